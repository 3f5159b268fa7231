"""OpenAPI 3.1 description of the receiver, generated with apispec from the marshmallow schemas the
receiver validates with (``webhook_app.schemas``) and from the sources' configuration (signature headers,
body limits), and served at ``GET /openapi.json``.

The document is built once, when the blueprint is registered on the app (the app's config is known by
then), and served as is. Each source is its own path (``/webhooks/genesys``, ...): its request body,
its signature headers, and every answer of the receiver's table (README "Receiver") with its body.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Response, current_app, jsonify
from flask.blueprints import BlueprintSetupState
from marshmallow import Schema, fields, validate

from switchboard.config import Config
from switchboard.generic_mapping import json_schema
from webhook_app.schemas import SCHEMAS, _Envelope

openapi_bp = Blueprint("openapi", __name__)
EXTENSION = "switchboard_openapi"
JSON = "application/json"
SCHEME_NAMES = {"genesys": "genesysSignature", "cxone": "cxoneSignature"}
STANDARD_WEBHOOKS = "standardWebhooks"


# --- response bodies (exactly what receiver.py, request_checks.py, health.py and payloads.py answer) ---

class Error(Schema):
    error = fields.String(required=True, metadata={"description": "What was wrong, in words."})
    detail = fields.String(metadata={"description": "More precisely (e.g. which signature check failed)."})


class UnknownSource(Error):
    sources = fields.List(fields.String(), required=True, metadata={"description": "The configured sources."})


class BodyTooLarge(Error):
    limit_bytes = fields.Integer(required=True, metadata={"description": "The source's max_body_bytes."})


class SchemaErrors(Error):
    fields_ = fields.Dict(
        data_key="fields", required=True,
        metadata={"description": "Every field error: field name -> list of messages, or nested object of "
                                 "the same shape for nested fields (e.g. event.timestamp)."})


class Accepted(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["accepted"]))
    event_id = fields.String(required=True, metadata={"description": "32 hex digits; also the payload_ref."})


class Duplicate(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["duplicate"]))
    event_id = fields.String(required=True, metadata={"description": "The event the first delivery became."})


class Health(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["ok"]))


class Readiness(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["ready", "not ready"]))
    checks = fields.Dict(keys=fields.String(), values=fields.String(), required=True,
                         metadata={"description": 'redis and broker: "ok" or "down: <error>".'})
    late_publishes_pending = fields.Integer(
        required=True, metadata={"description": "Accepted events this receiver is still publishing after a broker "
                                               "outage (never dropped; retried until the broker answers)."})


class StoredPayload(Schema):
    payload_ref = fields.String(required=True)
    payload = fields.Dict(required=True, metadata={"description": "The full normalised alert."})


RESPONSE_SCHEMAS: dict[str, type[Schema]] = {
    "Error": Error, "UnknownSource": UnknownSource, "BodyTooLarge": BodyTooLarge, "SchemaErrors": SchemaErrors,
    "Accepted": Accepted, "Duplicate": Duplicate, "Health": Health, "Readiness": Readiness,
    "StoredPayload": StoredPayload,
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.",
                               "schema": {"type": "string", "pattern": "^[0-9]+$"}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(description: str, schema: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {JSON: {"schema": _ref(schema)}}}
    if headers:
        response["headers"] = headers
    return response


def _webhook_responses(signature: str) -> dict[str, Any]:
    return {
        "202": _json("Published to the broker, broker confirmed.", "Accepted"),
        "200": _json("Idempotency key already seen: not enqueued again.", "Duplicate"),
        "400": _json("Body is not JSON (invalid UTF-8, NaN/Infinity, duplicate keys, nested too deeply).",
                     "Error"),
        "401": _json(f"Missing or wrong signature ({signature}).", "Error"),
        "404": _json("Unknown source (not in config/sources.yaml).", "UnknownSource"),
        "408": _json("The request did not arrive within service.read_timeout_s (a client sending too slowly).",
                     "Error"),
        "413": _json("Body over the source's max_body_bytes.", "BodyTooLarge"),
        "415": _json("Content-Type is not application/json.", "Error"),
        "422": _json("Payload does not match the source's schema; every field error is listed.", "SchemaErrors"),
        "429": _json("Source over its ingress rate.", "Error", RETRY_AFTER),
        "503": _json("Redis or the broker is down; the idempotency key is released, so a retry is accepted.",
                     "Error", RETRY_AFTER),
    }


# --- request bodies ---

def _schema_name(cls: type[Schema]) -> str:
    return cls.__name__


def _register_payload(spec: APISpec, source: str, cls: type[Schema]) -> str:
    """Register ``cls`` (and what it nests); an envelope becomes a oneOf over its event types."""
    name = _schema_name(cls)
    if not issubclass(cls, _Envelope):
        spec.components.schema(name, schema=cls)
        return name
    variants = []
    for event_type, inner in cls.inner.items():
        inner_name = _schema_name(inner)
        if inner_name not in spec.components.schemas:
            spec.components.schema(inner_name, schema=inner)
        variant = f"{name}_{inner_name}"
        spec.components.schema(variant, {
            "type": "object",
            "description": f"eventType {event_type!r}: {cls.body_field} is a {inner_name}.",
            "required": ["eventType", cls.body_field],
            "properties": {"eventType": {"type": "string", "enum": [event_type]}, cls.body_field: _ref(inner_name)},
        })
        variants.append((event_type, variant))
    mapping = {event_type: _ref(variant)["$ref"] for event_type, variant in variants}
    spec.components.schema(name, {
        "description": f"{source} envelope: the schema of {cls.body_field!r} depends on eventType.",
        "oneOf": [_ref(variant) for _, variant in variants],
        "discriminator": {"propertyName": "eventType", "mapping": mapping},
    })
    return name


def _register_generic(spec: APISpec, source_cfg: dict[str, Any]) -> str:
    """The generic source's body: the objects and typed values its config's mapping reads."""
    name = "GenericPayload"
    spec.components.schema(name, {
        "description": "Any JSON object holding the paths config/sources.yaml's mapping names; entity_id, "
                       "metric_type and timestamp are required.",
        **json_schema(source_cfg["mapping"]),
    })
    return name


def _signature(spec: APISpec, source: str, source_cfg: dict[str, Any]) -> tuple[str, str, list[dict[str, Any]]]:
    """The source's security scheme name, a description, and its further header parameters."""
    sig = source_cfg["signature"]
    if sig["scheme"] == "standard-webhooks":
        if STANDARD_WEBHOOKS not in spec.components.security_schemes:
            spec.components.security_scheme(STANDARD_WEBHOOKS, {
                "type": "apiKey", "in": "header", "name": "webhook-signature",
                "description": "Standard Webhooks: space-separated `v1,<base64 HMAC-SHA256>` entries over "
                               "`{webhook-id}.{webhook-timestamp}.{raw body}`, keyed by the base64 part of the "
                               "source's `whsec_` secret. The webhook-id and webhook-timestamp headers are "
                               "required too.",
            })
        params = [
            {"in": "header", "name": "webhook-id", "required": True,
             "description": "Message id: signed, and the idempotency key of the delivery.",
             "schema": {"type": "string", "minLength": 1}},
            {"in": "header", "name": "webhook-timestamp", "required": True,
             "description": f"Unix seconds; more than {sig['tolerance_s']} s from the receiver's clock is "
                            "answered 401.",
             "schema": {"type": "string", "pattern": "^[0-9]{1,12}$"}},
        ]
        return STANDARD_WEBHOOKS, f"Standard Webhooks, {sig['tolerance_s']} s tolerance", params
    scheme = SCHEME_NAMES.get(source, f"{source}Signature")
    encoding = sig.get("encoding", "hex")
    prefix = sig.get("prefix") or ""
    value = f"{prefix!r} followed by the {encoding}" if prefix else f"The {encoding}"
    spec.components.security_scheme(scheme, {
        "type": "apiKey", "in": "header", "name": sig["header"],
        "description": f"{value} HMAC-SHA256 of the raw body keyed by the source's secret (any of the "
                       f"comma-separated secrets in {source_cfg['secrets_env']} during a rotation).",
    })
    params = []
    header = source_cfg.get("idempotency", {}).get("header")
    if header:
        params.append({"in": "header", "name": header, "required": False,
                       "description": "Idempotency key of the delivery (else a hash of the body).",
                       "schema": {"type": "string"}})
    return scheme, f"{encoding} HMAC-SHA256 in {sig['header']}", params


def build_spec(config: Config) -> dict[str, Any]:
    try:
        version = metadata.version("switchboard")
    except metadata.PackageNotFoundError:
        version = "0.0.0"
    spec = APISpec(
        title="Switchboard receiver", version=version, openapi_version="3.1.0", plugins=[MarshmallowPlugin()],
        info={"description": "Webhooks from contact-center and infrastructure platforms in. Checks run in this "
                             "order: source, size (413; 408 when the body arrives too slowly), content type (415), "
                             "signature (401), ingress rate (429), JSON (400), schema (422), idempotency (200), "
                             "publish (503 or 202)."},
    )
    for name, cls in RESPONSE_SCHEMAS.items():
        spec.components.schema(name, schema=cls)
    for source, source_cfg in config.sources.items():
        cls = SCHEMAS.get(source)
        if source == "generic":
            body = _register_generic(spec, source_cfg)
        elif cls is None:
            continue
        else:
            body = _register_payload(spec, source, cls)
        scheme, signature, params = _signature(spec, source, source_cfg)
        spec.path(path=f"/webhooks/{source}", operations={"post": {
            "operationId": f"receive_{source}",
            "tags": ["webhooks"],
            "summary": f"Receive a {source_cfg.get('platform', source)} webhook",
            "description": f"Signed with {signature}; body at most {source_cfg['max_body_bytes']} bytes; "
                           f"at most {source_cfg['ingress_rate']['limit']} per "
                           f"{source_cfg['ingress_rate']['per_seconds']} s.",
            "security": [{scheme: []}],
            "parameters": params,
            "requestBody": {"required": True, "content": {JSON: {"schema": _ref(body)}}},
            "responses": _webhook_responses(signature),
        }})
    spec.components.security_scheme("payloadToken", {
        "type": "http", "scheme": "bearer",
        "description": "A token from SWITCHBOARD_PAYLOAD_TOKEN (comma-separated during a rotation).",
    })
    spec.path(path="/payloads/{ref}", operations={"get": {
        "operationId": "get_payload", "tags": ["payloads"],
        "summary": "The full alert behind a work item's or callback's payload_ref",
        "security": [{"payloadToken": []}],
        "parameters": [{"in": "path", "name": "ref", "required": True, "description": "A payload_ref.",
                        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,128}$"}}],
        "responses": {
            "200": _json("The stored payload.", "StoredPayload"),
            "401": _json("Missing or wrong bearer token.", "Error",
                         {"WWW-Authenticate": {"description": "Bearer challenge.", "schema": {"type": "string"}}}),
            "404": _json("Unknown or expired ref, or payload references not enabled (no token configured).",
                         "Error"),
            "503": _json("Redis is down.", "Error", RETRY_AFTER),
        },
    }})
    spec.path(path="/healthz", operations={"get": {
        "operationId": "healthz", "tags": ["health"], "summary": "Liveness: the process answers",
        "responses": {"200": _json("Alive.", "Health")}}})
    spec.path(path="/readyz", operations={"get": {
        "operationId": "readyz", "tags": ["health"], "summary": "Readiness: Redis and the broker reachable",
        "responses": {"200": _json("Ready.", "Readiness"),
                      "503": _json("Redis or the broker is down.", "Readiness", RETRY_AFTER)}}})
    spec.path(path="/openapi.json", operations={"get": {
        "operationId": "openapi", "tags": ["meta"], "summary": "This document",
        "responses": {"200": {"description": "OpenAPI 3.1 document.",
                              "content": {JSON: {"schema": {"type": "object"}}}}}}})
    return spec.to_dict()


@openapi_bp.record_once
def _build_on_register(state: BlueprintSetupState) -> None:
    state.app.extensions[EXTENSION] = build_spec(state.app.extensions["switchboard"].config)


@openapi_bp.get("/openapi.json")
def openapi_json() -> Response:
    return jsonify(current_app.extensions[EXTENSION])
