"""The receiver's OpenAPI document (``GET /openapi.json``): a valid OpenAPI 3.1 description generated from
the marshmallow schemas, and schemathesis against the live receiver over real HTTP: no 5xx for any
generated input, only documented status codes, content types, headers and bodies.

Runs on the Redis broker only (the spec and the answers do not depend on the broker kind).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import requests
import schemathesis
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from switchboard.config import load_config
from switchboard.sender import signed_headers
from switchboard.settings import load_settings
from tests.helpers import ROOT, SECRETS
from tests.posting import SECRET_ENV
from webhook_app.openapi import build_spec

pytestmark = pytest.mark.parametrize("broker_kind", ["redis"], indirect=True)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
MAX_EXAMPLES = 25
SOURCES = ("genesys", "cxone", "ztp", "iot", "generic")
WEBHOOK_CODES = {"200", "202", "400", "401", "404", "408", "413", "415", "422", "429", "503"}
BODY_SCHEMAS = {"genesys": "GenesysPayload", "cxone": "CXonePayload", "ztp": "ZTPPayload", "iot": "IoTPayload",
                "generic": "GenericPayload"}
HMAC_HEADERS = {"genesys": "X-Genesys-Signature", "cxone": "X-CXone-Signature", "generic": "X-Signature-256"}


def _config() -> schemathesis.Config:
    return schemathesis.Config.from_dict({
        "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
        "request-timeout": 15,
    })


@pytest.fixture
def spec(receiver_only: dict) -> dict[str, Any]:
    r = requests.get(f"{receiver_only['url']}/openapi.json", timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    return r.json()


def _repo_spec() -> dict[str, Any]:
    """The document the receiver serves with this repository's config (the first test checks they are equal).

    Loaded at import, so schemathesis parametrizes one test per operation (its fixture-based loader does
    not run under this pytest version).
    """
    return build_spec(load_config(load_settings({}).config_dir))


schema = schemathesis.openapi.from_dict(_repo_spec(), config=_config())


def test_served_document_is_valid_openapi(spec: dict[str, Any], receiver_only: dict) -> None:
    validate_openapi(spec)
    assert spec["openapi"].startswith("3.1")
    assert set(spec["paths"]) == {*(f"/webhooks/{s}" for s in SOURCES), "/payloads/{ref}", "/healthz", "/readyz",
                                  "/openapi.json"}
    # built once at app creation and served as is; the same document schemathesis runs on below
    assert spec == receiver_only["server"].app.extensions["switchboard_openapi"] == _repo_spec()


def test_each_source_documents_every_answer_and_its_signature(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    for source in SOURCES:
        op = spec["paths"][f"/webhooks/{source}"]["post"]
        assert set(op["responses"]) == WEBHOOK_CODES
        for code in ("429", "503"):
            assert "Retry-After" in op["responses"][code]["headers"]
        assert op["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(BODY_SCHEMAS[source])
        (requirement,) = op["security"]
        header = schemes[next(iter(requirement))]["name"]
        params = {p["name"] for p in op["parameters"]}
        if source in ("ztp", "iot"):
            assert header == "webhook-signature" and {"webhook-id", "webhook-timestamp"} <= params
        else:
            assert header == HMAC_HEADERS[source]
            assert "X-Request-Id" in params
    genesys = spec["components"]["schemas"]["GenesysPayload"]
    assert set(genesys["discriminator"]["mapping"]) == {"telephony.trunk.status.changed", "routing.queue.event",
                                                        "taskmanagement.workitem.resolved"}
    assert len(spec["components"]["schemas"]["CXonePayload"]["oneOf"]) == 2
    assert spec["components"]["schemas"]["SchemaErrors"]["required"] == ["error", "fields"]
    # the generic body follows config/sources.yaml's mapping: the objects along its required paths are required
    generic = spec["components"]["schemas"]["GenericPayload"]
    assert generic["required"] == ["alert"] and set(generic["properties"]["alert"]["required"]) == {
        "labels", "metric", "startsAt"}
    assert "sha256=" in schemes["genericSignature"]["description"]


def test_samples_match_the_documented_request_bodies(spec: dict[str, Any]) -> None:
    def validator(source: str) -> Draft202012Validator:
        root = {"$ref": f"#/components/schemas/{BODY_SCHEMAS[source]}", "components": spec["components"]}
        return Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER)

    checked = 0
    for path in sorted((ROOT / "samples").glob("*.json")):
        source = path.name.split("-")[0]
        if source in BODY_SCHEMAS:
            errors = list(validator(source).iter_errors(json.loads(path.read_text())))
            assert not errors, (path.name, [e.message for e in errors])
            checked += 1
    assert checked >= 8
    example = json.loads((ROOT / "config" / "examples" / "generic-alert.json").read_text())
    assert not list(validator("generic").iter_errors(example))
    assert not validator("generic").is_valid({"alert": {"labels": {"host": "db-1"}, "metric": "cpu"}})
    bad = {"eventType": "telephony.trunk.status.changed", "event": {"trunkId": "", "status": "SIDEWAYS"}}
    assert not validator("genesys").is_valid(bad)
    assert not validator("genesys").is_valid({"eventType": "no.such.event", "event": {}})


@schema.parametrize()
def test_schemathesis_unsigned(case: schemathesis.Case, receiver_only: dict) -> None:
    """Requests as generated: webhooks mostly answer 401 (documented); health, readiness, payloads, the spec."""
    case.call_and_validate(base_url=receiver_only["url"], checks=CHECKS)


@schema.include(path_regex="^/webhooks/").parametrize()
def test_schemathesis_signed(case: schemathesis.Case, receiver_only: dict) -> None:
    """Every generated body signed with the source's secret: the schema, idempotency and publish steps answer
    (422, 400, 200, 202, ...), all documented, none 5xx."""
    source = case.path.rsplit("/", 1)[1]
    kwargs = case.as_transport_kwargs(base_url=receiver_only["url"])
    if "json" in kwargs:
        body = json.dumps(kwargs.pop("json")).encode()
    else:
        data = kwargs.pop("data", b"")
        body = data.encode() if isinstance(data, str) else bytes(data or b"")
    secret = SECRETS[SECRET_ENV[source]].split(",")[0]
    rid = uuid.uuid4().hex
    source_cfg = receiver_only["server"].state.config.sources[source]
    signed = signed_headers(source_cfg, body, secret, request_id=rid, msg_id=f"msg_{rid}")
    generated = dict(kwargs.pop("headers", None) or {})
    if any(k.lower() == "content-type" for k in generated):
        signed.pop("Content-Type")  # keep the generated one: a negative case may send another type (415)
    headers = {k: v for k, v in generated.items() if k.lower() not in {h.lower() for h in signed}}
    kwargs.pop("timeout", None)
    response = requests.request(**kwargs, data=body, headers={**headers, **signed}, timeout=15)
    case.validate_response(response, checks=CHECKS)
