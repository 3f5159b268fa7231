"""The configuration reference (``docs/configuration.md``), generated from the marshmallow schemas.

``render_reference()`` walks every file's schema in ``switchboard.config.FILES`` and renders, per key, its
dotted path (``<name>`` stands for a map key, ``[]`` for a list item), type, whether it is required or
its default, the allowed values taken from the validators (``OneOf``, ``Range``, ``Length``, ``Regexp``),
and a one-line description: a field's ``metadata={"description": ...}`` when it has one, else the entry
in ``DESCRIPTIONS`` (``switchboard/config_texts.py``). Each file's cross-key checks (``validates_schema``)
and the environment variables the service reads (``switchboard.settings``, the vendor clients) follow.

Regenerate after changing a schema (a test fails until the file matches)::

    python -m switchboard.config_reference > docs/configuration.md
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from marshmallow import Schema, ValidationError, fields, validate
from marshmallow.decorators import VALIDATES_SCHEMA
from marshmallow.utils import missing

from switchboard import config as config_module
from switchboard.config import FILES, ConfigError
from switchboard.config_texts import (  # noqa: F401 - the words, re-exported for the tests
    CREDENTIAL_MEANINGS,
    DESCRIPTIONS,
    FILE_INTROS,
    LOAD_CHECKS,
    OTHER_ENV,
    PROCFILE_MEANINGS,
    SCHEMA_CHECKS,
    SETTINGS_ENV,
    VENDOR_MEANINGS,
)
from switchboard.settings import REPO_CONFIG_DIR, VENDOR_URLS, load_settings

REGENERATE = "python -m switchboard.config_reference > docs/configuration.md"
DOC_PATH = REPO_CONFIG_DIR.parent / "docs" / "configuration.md"
MAP_KEY = "<name>"
LIST_ITEM = "[]"

PROCFILE = REPO_CONFIG_DIR.parent / "Procfile"
_PROCFILE_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class Entry:
    """One key of one file, as rendered."""

    path: str
    type: str
    requirement: str
    constraints: tuple[str, ...]
    description: str
    note: str | None = None  # a caveat rendered under the file's table


def _key(name: str, field: fields.Field) -> str:
    return field.data_key or name


def type_name(field: fields.Field | None) -> str:
    """A field's type in words: string, integer, number, boolean, datetime, any, object, list of X, map..."""
    if field is None or type(field) is fields.Raw:
        return "any"
    if isinstance(field, fields.Nested):
        return "object"
    if isinstance(field, fields.List):
        return f"list of {type_name(field.inner)}"
    if isinstance(field, fields.Mapping):
        keys = "string" if field.key_field is None else type_name(field.key_field)
        return f"map of {keys} to {type_name(field.value_field)}"
    for kind, word in ((fields.Boolean, "boolean"), (fields.Integer, "integer"), (fields.Float, "number"),
                       (fields.Number, "number"), (fields.DateTime, "datetime"), (fields.String, "string")):
        if isinstance(field, kind):
            return word
    return type(field).__name__.lower()


def _number(value: Any) -> str:
    return str(value)


def describe_validator(v: Any, field: fields.Field | None = None) -> str:
    """One validator in words: ``one of `hex`, `base64```, ``1..50``, ``≥ 1``, ``matches `re` (message)``."""
    if isinstance(v, validate.OneOf):
        return "one of " + ", ".join(f"`{c}`" for c in v.choices)
    if isinstance(v, validate.Range):
        low = None if v.min is None else f"{'≥' if v.min_inclusive else '>'} {_number(v.min)}"
        high = None if v.max is None else f"{'≤' if v.max_inclusive else '<'} {_number(v.max)}"
        if low and high and v.min_inclusive and v.max_inclusive:
            return f"{_number(v.min)}..{_number(v.max)}"
        return ", ".join(p for p in (low, high) if p)
    if isinstance(v, validate.Length):
        unit = "item" if isinstance(field, fields.List | fields.Mapping) else "character"
        if v.equal is not None:
            return f"exactly {v.equal} {unit}{'s' * (v.equal != 1)}"
        if v.min is not None and v.max is not None:
            return f"{v.min}..{v.max} {unit}s"
        count = v.min if v.min is not None else v.max
        return f"{'at least' if v.min is not None else 'at most'} {count} {unit}{'s' * (count != 1)}"
    if isinstance(v, validate.Regexp):
        text = f"matches `{v.regex.pattern}`"
        return text if v.error == validate.Regexp.default_message else f"{text} ({v.error})"
    if isinstance(v, validate.Validator):
        return repr(v)
    return f"checked by `{getattr(v, '__qualname__', type(v).__name__)}`"


def constraints(field: fields.Field) -> tuple[str, ...]:
    """Allowed values of the field, of a list's items, and of a map's keys and values."""
    out = [describe_validator(v, field) for v in field.validators]
    if isinstance(field, fields.List) and not isinstance(field.inner, fields.Nested):
        out += [f"items: {describe_validator(v, field.inner)}" for v in field.inner.validators]
    if isinstance(field, fields.Mapping):
        if field.key_field is not None:
            out += [f"keys: {describe_validator(v, field.key_field)}" for v in field.key_field.validators]
        if field.value_field is not None and not isinstance(field.value_field, fields.Nested):
            out += [f"values: {describe_validator(v, field.value_field)}" for v in field.value_field.validators]
    if isinstance(field, fields.DateTime):
        out.append("ISO 8601 with a UTC offset" if isinstance(field, fields.AwareDateTime) else "ISO 8601")
    return tuple(out)


def flow(value: Any) -> str:
    """A value as inline YAML, as one would write it in the file."""
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000).strip()
    return text.removesuffix("...").strip()


def _duration(seconds: float) -> str:
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if unit == 'day' and count > 1 else ''}"
    return ""


def requirement(field: fields.Field, path: str) -> tuple[str, str | None]:
    """"required", "optional" or "default `X`" (callables called), and a caveat about the default if any."""
    if field.required:
        return "**required**", None
    if field.load_default is missing:
        return "optional", None
    default = field.load_default() if callable(field.load_default) else field.load_default
    text = f"`{flow(default)}`"
    if path.endswith("_s") and isinstance(default, int | float) and _duration(default):
        text += f" ({_duration(default)})"
    note = None
    if isinstance(field, fields.Nested) and isinstance(default, dict):
        try:
            loaded = field.schema.load(default)
        except ValidationError:
            loaded = None
        # marshmallow hands a load_default back as it is, without running it through the nested schema: worth a
        # caveat when that loses a default (keys that load as null are as absent to the code's ``.get``).
        present = {k: v for k, v in default.items() if v is not None}
        if loaded is None or {k: v for k, v in loaded.items() if v is not None} != present:
            note = (f"`{path}`: when the key is omitted the loader stores `{flow(default)}` as it is, without the "
                    "defaults of the keys below it; they apply only when the key is written (even as `{}`).")
            text += " †"
    return f"default {text}", note


def _description(field: fields.Field, path: str) -> str:
    return field.metadata.get("description") or DESCRIPTIONS.get(path, "")


def _children(field: fields.Field, path: str) -> Iterator[tuple[Schema, str]]:
    """The nested schema under a field and the path prefix of its keys."""
    if isinstance(field, fields.Nested):
        yield field.schema, path
    elif isinstance(field, fields.List) and isinstance(field.inner, fields.Nested):
        yield field.inner.schema, path + LIST_ITEM
    elif isinstance(field, fields.Mapping) and isinstance(field.value_field, fields.Nested):
        yield field.value_field.schema, f"{path}.{MAP_KEY}"


def walk(schema: Schema, prefix: str = "") -> Iterator[Entry]:
    """Every key of the schema and of the schemas nested in it, depth first, in declaration order."""
    for name, field in schema.fields.items():
        key = _key(name, field)
        path = f"{prefix}.{key}" if prefix else key
        req, note = requirement(field, path)
        yield Entry(path, type_name(field), req, constraints(field), _description(field, path), note)
        for child, child_prefix in _children(field, path):
            yield from walk(child, child_prefix)


def schemas_under(schema: Schema, path: str = "") -> Iterator[tuple[Schema, str]]:
    """The schema and every schema nested in it, with the path each sits at ("" for the file's top)."""
    yield schema, path
    for name, field in schema.fields.items():
        key = _key(name, field)
        for child, child_prefix in _children(field, f"{path}.{key}" if path else key):
            yield from schemas_under(child, child_prefix)


def schema_checks(schema: Schema) -> list[str]:
    """The names (``Class.method``) of a schema's ``@validates_schema`` checks."""
    hooks = getattr(type(schema), "_hooks", {}).get(VALIDATES_SCHEMA, [])
    return [f"{type(schema).__name__}.{hook[0] if isinstance(hook, tuple) else hook}" for hook in hooks]


def file_is_optional(name: str) -> bool:
    """Whether ``load_config`` accepts the file being absent (every key then takes its default)."""
    try:
        config_module._load_file(Path("/nonexistent/switchboard-config"), name, FILES[name])
    except ConfigError:
        return False
    return True


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def render_file(name: str, schema_cls: type[Schema]) -> list[str]:
    schema = schema_cls()
    lines = [f"## `{name}`", "", FILE_INTROS.get(name, "")]
    if file_is_optional(name):
        lines[-1] += " The file may be absent: every key then takes its default."
    lines.append("")
    entries = list(walk(schema))
    lines += _table(["key", "type", "required / default", "allowed values", "description"],
                    [[f"`{e.path}`", e.type, e.requirement, "; ".join(e.constraints), e.description]
                     for e in entries])
    notes = [e.note for e in entries if e.note]
    if notes:
        for note in notes:
            lines += ["", f"† {note}"]
    checks = []
    for sub, path in schemas_under(schema):
        where = f"`{path}`" if path else "top level"
        for check in schema_checks(sub):
            cls_name, method = check.split(".")
            text = SCHEMA_CHECKS.get((cls_name, method), f"checked by `{check}`")
            checks.append(f"- {where}: {text}")
    checks += [f"- after loading every file: {text}" for text in LOAD_CHECKS.get(name, [])]
    if checks:
        lines += ["", "Checks across keys:", ""] + checks
    return lines + [""]


def _env_default(value: Any) -> str:
    if isinstance(value, Path):
        try:
            return f"`{value.relative_to(REPO_CONFIG_DIR.parent)}/` of the checkout"
        except ValueError:
            return f"`{value}`"
    return f"`{value}`"


def settings_rows() -> list[list[str]]:
    """``load_settings``'s variables with the defaults it gives (or the variable it falls back to)."""
    base = load_settings({})
    rows = []
    for var, (attr, meaning) in SETTINGS_ENV.items():
        default = _env_default(getattr(base, attr))
        for other, (other_attr, _) in SETTINGS_ENV.items():
            probe = "probe://switchboard-config-reference"
            if other != var and other_attr != "port" and str(getattr(load_settings({other: probe}), attr)) == probe:
                default = f"the value of `{other}`"
        rows.append([f"`{var}`", default, meaning])
    return rows


def vendor_rows() -> list[list[str]]:
    return [[f"`{var}`", f"`{default}`" if default else "none", VENDOR_MEANINGS.get(vendor, f"{vendor} base URL.")]
            for vendor, (var, default) in VENDOR_URLS.items()]


def credential_rows(listed: set[str]) -> list[list[str]]:
    """The vendor credentials ``switchboard up`` fills in for the sandbox: the ones the vendor clients need."""
    from switchboard.dev_defaults import sandbox_vendor_environment

    names = [n for n in sandbox_vendor_environment("http://127.0.0.1:8900", {}) if n not in listed]
    return [[f"`{n}`", "none", CREDENTIAL_MEANINGS.get(n, "")] for n in names if not n.endswith("_URL")]


def named_env_rows() -> list[list[str]]:
    """Keys whose value is the name of an environment variable (``*_env``), from the schemas."""
    rows = []
    for name, schema_cls in FILES.items():
        for e in walk(schema_cls()):
            if e.path.rsplit(".", 1)[-1].endswith("_env"):
                rows.append([f"`{name}` `{e.path}`", e.requirement, e.description])
    return rows


def procfile_rows(listed: set[str]) -> list[list[str]]:
    """``${NAME:-default}`` knobs of the Procfile, with their defaults and the processes using them."""
    if not PROCFILE.exists():
        return []
    found: dict[str, tuple[str | None, list[str]]] = {}
    for line in PROCFILE.read_text().splitlines():
        process, _, command = line.partition(":")
        for match in _PROCFILE_VAR.finditer(command):
            default, users = found.setdefault(match.group(1), (match.group(2), []))
            if process.strip() not in users:
                users.append(process.strip())
    rows = []
    for name, (default, users) in found.items():
        if name in listed:
            continue
        meaning = PROCFILE_MEANINGS.get(name)
        if meaning is None and name.endswith("_CONCURRENCY"):
            meaning = "Processes of the pool."
        elif meaning is None and name.endswith("_METRICS_PORT"):
            meaning = "Port of the pool's `/metrics` (as `SWITCHBOARD_WORKER_METRICS_PORT`)."
        rows.append([f"`{name}`", f"`{default}`" if default else "none", ", ".join(f"`{u}`" for u in users),
                     meaning or ""])
    return rows


def render_environment() -> list[str]:
    lines = ["## Environment variables", "",
             "Everything that differs between machines, and every secret, comes from the environment; the YAML "
             "holds only the names of the variables with secrets.", "",
             "### Process settings (`switchboard/settings.py`)", ""]
    lines += _table(["variable", "default", "meaning"], settings_rows())
    lines += ["", "### Vendor base URLs (`VENDOR_URLS`)", "",
              "Under `switchboard up`, every vendor whose URL is unset is served by the vendor sandbox, with the "
              "sandbox's credentials.", ""]
    lines += _table(["variable", "default", "meaning"], vendor_rows())
    listed = set(SETTINGS_ENV) | {var for var, _ in VENDOR_URLS.values()}
    lines += ["", "### Vendor credentials", "",
              "A dispatch whose vendor credentials are unset dead-letters with a message naming the variable.", ""]
    lines += _table(["variable", "default", "meaning"], credential_rows(listed))
    lines += ["", "### Variables named by the configuration", "",
              "Secrets whose variable names are chosen in the YAML (the shipped files use `SWITCHBOARD_SECRET_*` "
              "and `SWITCHBOARD_PD_KEY_*`).", ""]
    lines += _table(["key naming the variable", "default", "meaning"], named_env_rows())
    lines += ["", "### Process file (`Procfile`, run by `switchboard up`)", ""]
    lines += _table(["variable", "default", "processes", "meaning"], procfile_rows(set(SETTINGS_ENV)))
    lines += ["", "### Other", ""]
    lines += _table(["variable", "default", "meaning"],
                    [[f"`{var}`", default, meaning] for var, (default, meaning) in OTHER_ENV.items()])
    return lines + [""]


def render_reference() -> str:
    """The whole reference as Markdown (what ``docs/configuration.md`` holds)."""
    lines = ["# Configuration reference", "",
             f"Generated from the marshmallow schemas in `switchboard/config.py` by `{REGENERATE}`; do not edit "
             "by hand.", "",
             "The YAML files live in `config/` (or `SWITCHBOARD_CONFIG_DIR`) and are validated at start-up "
             "(`switchboard config check`); unknown keys are errors. Key paths are dotted; `<name>` stands for "
             "a key of a map, `[]` for an item of a list.", ""]
    for name, schema_cls in FILES.items():
        lines += render_file(name, schema_cls)
    lines += render_environment()
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> int:
    """Print the reference (``python -m switchboard.config_reference > docs/configuration.md``)."""
    sys.stdout.write(render_reference())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
