"""The configuration reference (docs/configuration.md) is generated from the schemas and kept current."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import pytest
from marshmallow import Schema, fields, validate

from switchboard import config_reference as ref
from switchboard.config import FILES
from switchboard.settings import VENDOR_URLS
from tests.helpers import ROOT

DOC = ROOT / "docs" / "configuration.md"


@pytest.fixture(scope="module")
def text() -> str:
    return ref.render_reference()


def _paths(schema: Schema, prefix: str = "") -> Iterator[str]:
    """Every key path of a schema, walked here independently of the module under test."""
    for name, field in schema.fields.items():
        path = f"{prefix}.{field.data_key or name}" if prefix else (field.data_key or name)
        yield path
        if isinstance(field, fields.Nested):
            yield from _paths(field.schema, path)
        elif isinstance(field, fields.List) and isinstance(field.inner, fields.Nested):
            yield from _paths(field.inner.schema, path + "[]")
        elif isinstance(field, fields.Dict) and isinstance(field.value_field, fields.Nested):
            yield from _paths(field.value_field.schema, path + ".<name>")


def _section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def _row(text: str, path: str) -> str:
    rows = [line for line in text.splitlines() if line.startswith(f"| `{path}` |")]
    assert len(rows) == 1, f"{path}: {len(rows)} rows"
    return rows[0]


def test_docs_match_the_schemas(text: str) -> None:
    assert DOC.exists(), f"docs/configuration.md is missing: run `{ref.REGENERATE}`"
    assert DOC.read_text() == text, f"docs/configuration.md is out of date: run `{ref.REGENERATE}`"


def test_main_prints_the_reference(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert ref.main() == 0
    assert capsys.readouterr().out == text


@pytest.mark.parametrize("name", list(FILES))
def test_every_key_of_every_schema_is_listed_once(text: str, name: str) -> None:
    section = _section(text, f"`{name}`")
    expected = list(_paths(FILES[name]()))
    listed = re.findall(r"^\| `([^`]+)` \|", section, flags=re.M)
    assert listed == expected


def test_spot_checks(text: str) -> None:
    sources, targets, windows = (_section(text, f"`{n}`") for n in ("sources.yaml", "targets.yaml", "windows.yaml"))
    encoding = _row(sources, "sources.<name>.signature.encoding")
    assert "one of `hex`, `base64`" in encoding and "default `hex`" in encoding and "| string |" in encoding
    assert "keys: one of `genesys`, `cxone`, `ztp`, `iot`, `generic`" in _row(sources, "sources")
    assert "must be a dotted path" in _row(sources, "sources.<name>.mapping.entity_id")
    assert "default `health`" in _row(sources, "sources.<name>.mapping.kind")
    assert "| **required** |" in _row(sources, "sources.<name>.signature.scheme")
    assert "64..10485760" in _row(sources, "sources.<name>.max_body_bytes")
    assert "at least 1 item |" in _row(sources, "sources.<name>.idempotency.payload_keys[].fields")
    assert "| list of object |" in _row(sources, "sources.<name>.idempotency.payload_keys")

    attempts = _row(targets, "targets.<name>.retry.max_attempts")
    assert "1..50" in attempts and "default `6`" in attempts and "| integer |" in attempts
    assert "| number |" in _row(targets, "targets.<name>.timeout.read_s")
    assert "| map of string to integer |" in _row(targets, "targets.<name>.workitem.priority")
    assert "values: ≥ 1" in _row(targets, "targets.<name>.workitem.due_minutes")
    assert "default `{connect_s: 1.0, read_s: 2.0}`" in _row(targets, "crm.timeout")  # a callable, called
    assert "(7 days)" in _row(targets, "payload_ref_ttl_s")
    assert "`call`: `dead_letter`" in _row(targets, "targets.<name>.on_uncertain")

    federal = _row(windows, "dialing.federal_bound")
    assert "start: '08:00'" in federal and "end: '21:00'" in federal
    start = _row(windows, "dialing.default_window.start")
    assert r"matches `^([01][0-9]\|2[0-3]):[0-5][0-9]$` (must be HH:MM)" in start
    assert "keys: matches `^[A-Z]{2}$` (a US state code)" in _row(windows, "dialing.states")
    assert "ISO 8601 with a UTC offset" in _row(windows, "maintenance[].recurrence.dtstart")
    assert "default `false`" in _row(windows, "dialing.states.<name>.no_sundays")
    assert "items: one of `genesys`" in _row(windows, "maintenance[].scope.source")

    assert "The file may be absent" in _section(text, "`service.yaml`")
    assert "The file may be absent" not in _section(text, "`sources.yaml`")


def test_important_keys_are_described() -> None:
    described = {e.path: e.description for name, cls in FILES.items() for e in ref.walk(cls())}
    top = {p for name, cls in FILES.items() for p in _paths(cls()) if "." not in p and "[]" not in p}
    prefixes = ("targets.", "dialing.", "maintenance[]", "sources.<name>.signature", "sources.<name>.idempotency")
    important = top | {p for p in described if p.startswith(prefixes)}
    assert not [p for p in sorted(important) if not described[p]]


def test_no_description_for_a_key_that_does_not_exist() -> None:
    paths = {p for cls in FILES.values() for p in _paths(cls())}
    assert not set(ref.DESCRIPTIONS) - paths


def test_every_schema_check_is_explained(text: str) -> None:
    for cls in FILES.values():
        for schema, _ in ref.schemas_under(cls()):
            for check in ref.schema_checks(schema):
                assert tuple(check.split(".")) in ref.SCHEMA_CHECKS, f"add {check} to SCHEMA_CHECKS"
    assert "checked by `" not in text
    assert "- `targets.<name>.call`: `via: genesys_callback` needs `queue`" in text


def _tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "switchboard", "tasks", "webhook_app", "clients", "Procfile"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return out.split()


def test_every_environment_variable_the_code_reads_is_listed(text: str) -> None:
    env = _section(text, "Environment variables")
    names: set[str] = set()
    for path in _tracked_files():
        source = (ROOT / path).read_text()
        if path.endswith(".py"):
            names |= set(re.findall(r"[\"'](SWITCHBOARD_[A-Z0-9_]*[A-Z0-9]|(?:[A-Z]+_)?PORT|PROMETHEUS_MULTIPROC_DIR)"
                                    r"[\"']", source))
        elif path == "Procfile":
            names |= set(re.findall(r"\$\{([A-Z0-9_]+)", source))
    names |= {var for var, _ in VENDOR_URLS.values()}
    missing = sorted(n for n in names if f"`{n}`" not in env)
    assert not missing, f"document {missing} in switchboard/config_texts.py, then run `{ref.REGENERATE}`"


def test_walk_reads_metadata_validators_and_defaults() -> None:
    class Inner(Schema):
        size = fields.Integer(load_default=3, validate=validate.Range(min=0, max=9, min_inclusive=False))

    class Outer(Schema):
        name = fields.String(required=True, validate=validate.Length(min=2, max=8),
                             metadata={"description": "From metadata."})
        inner = fields.Nested(Inner, load_default=dict)
        items = fields.List(fields.Nested(Inner), load_default=list)
        ratio = fields.Float(validate=validate.Range(max=1))

    entries = {e.path: e for e in ref.walk(Outer())}
    assert list(entries) == ["name", "inner", "inner.size", "items", "items[].size", "ratio"]
    assert entries["name"].description == "From metadata."
    assert entries["name"].constraints == ("2..8 characters",)
    assert entries["inner.size"].constraints == ("> 0, ≤ 9",)
    assert entries["inner"].note and "†" in entries["inner"].requirement  # {} is stored without size's default
    assert entries["ratio"].requirement == "optional" and entries["ratio"].constraints == ("≤ 1",)
    assert entries["items"].type == "list of object" and entries["items"].note is None
