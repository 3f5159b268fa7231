"""The ``generic`` source: its config mapping (validated, errors naming file/key/reason), the receiver's check
of a payload against it (401 / 422 / 200 / 202 over real HTTP), ``switchboard send generic``, and end to end
through a real Celery worker to the PagerDuty sandbox (trigger, then resolve, with ``dedup_key = alert_key``).

Service tests run on the Redis broker only (REDIS_ONLY): nothing here depends on the broker kind.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from jsonschema import Draft202012Validator

from switchboard.config import ConfigError, load_config
from switchboard.generic_mapping import MISSING, json_schema, lookup, payload_errors
from switchboard.sender import signed_headers
from switchboard.signatures import sign_hmac
from switchboard.stages import StageContext
from switchboard.stages.normalize import alert_key, normalize
from tests.helpers import ROOT, SECRETS, config_copy
from tests.posting import post, wait_outcome
from webhook_app.schemas import validate_payload

REDIS_ONLY = pytest.mark.parametrize("broker_kind", ["redis"], indirect=True)

EXAMPLE_FILE = ROOT / "config" / "examples" / "generic-alert.json"
EXAMPLE = json.loads(EXAMPLE_FILE.read_text())
CONFIG = load_config(ROOT / "config")
GENERIC = CONFIG.sources["generic"]
SECRET = SECRETS["SWITCHBOARD_SECRET_GENERIC"]


def alert_body(host: str | None = None, **changes: Any) -> dict[str, Any]:
    """The example alert for a fresh host and alert id, with ``changes`` applied to its ``alert`` object."""
    body = copy.deepcopy(EXAMPLE)
    body["alert"]["labels"]["host"] = host or f"db-{uuid.uuid4().hex[:8]}"
    body["alert"]["id"] = f"a-{uuid.uuid4().hex[:12]}"
    body["alert"].update(changes)
    return body


def send_raw(ctx: dict, body: bytes, headers: dict[str, str]) -> requests.Response:
    return requests.post(f"{ctx['url']}/webhooks/generic", data=body, headers=headers, timeout=10)


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return signed_headers(GENERIC, body, secret, request_id=uuid.uuid4().hex)


# --- pure: config, payload check, JSON Schema, normalizer ---


def _broken_config(tmp_path: Path, old: str, new: str) -> str:
    directory = config_copy(tmp_path / "config", {"sources.yaml": [(old, new)]})
    with pytest.raises(ConfigError) as exc:
        load_config(directory)
    return str(exc.value)


def test_config_mapping_errors_name_file_key_and_reason(tmp_path: Path) -> None:
    assert "config/sources.yaml: sources.generic.mapping.entity_id: must be a dotted path like alert.labels.host" in \
        _broken_config(tmp_path / "1", "entity_id: alert.labels.host", "entity_id: alert..host")
    assert "config/sources.yaml: sources.generic.mapping.timestamp: Missing data for required field." in \
        _broken_config(tmp_path / "2", "      timestamp: alert.startsAt\n", "")
    assert "sources.generic.mapping.status.values.resolved: Must be one of: firing, resolved." in \
        _broken_config(tmp_path / "3", "resolved: resolved,", "resolved: closed,")
    assert ("sources.generic.mapping.entity_id: alert.labels.host is read as a value, but entity_name "
            "(alert.labels.host.name) reads inside it") in \
        _broken_config(tmp_path / "4", "entity_name: alert.labels.hostname", "entity_name: alert.labels.host.name")
    assert "sources.generic.mapping.kind: Must be one of: health, ztp, iot." in \
        _broken_config(tmp_path / "5", "kind: health", "kind: weather")


def test_only_the_generic_source_has_a_mapping(tmp_path: Path) -> None:
    text = _broken_config(tmp_path / "1", "    mapping:\n      entity_id", "    not_a_mapping:\n      entity_id")
    assert "sources.generic.not_a_mapping: Unknown field." in text
    text = _broken_config(tmp_path / "2", "    platform: iot\n", "    platform: iot\n    mapping: {entity_id: a, "
                                                                  "metric_type: b, timestamp: c}\n")
    assert "config/sources.yaml: sources.iot.mapping: only the generic source takes a mapping" in text
    directory = config_copy(tmp_path / "3")
    text = (directory / "sources.yaml").read_text()
    (directory / "sources.yaml").write_text(text[:text.index("    mapping:\n      entity_id")]
                                            + text[text.index("    severity:\n      # every metric"):])
    with pytest.raises(ConfigError, match=r"sources\.generic\.mapping: required for the generic source"):
        load_config(directory)


def test_payload_errors_are_keyed_by_path_and_name_the_field() -> None:
    mapping = GENERIC["mapping"]
    assert payload_errors(mapping, EXAMPLE) == {}
    body = alert_body(metric=7, startsAt="2026-03-14T09:26:53", value={"no": "object"}, direction="sideways")
    del body["alert"]["labels"]["host"]
    errors = payload_errors(mapping, body)
    assert errors == {
        "alert.labels.host": ["Missing data for required field (mapping.entity_id)."],
        "alert.metric": ["Not a valid string. (mapping.metric_type)"],
        "alert.startsAt": ["Not a valid aware datetime. (mapping.timestamp)"],
        "alert.value": ["Not a valid reading (a number, or a string of at most 256 characters). "
                        "(mapping.current_value)"],
        "alert.direction": ["Must be one of: above, below. (mapping.breach_direction)"],
    }
    blocked = payload_errors(mapping, {"alert": {**EXAMPLE["alert"], "labels": "db-1"}})
    assert blocked["alert.labels.host"] == ["alert.labels is not an object, so alert.labels.host cannot be read "
                                            "(mapping.entity_id)."]
    assert payload_errors(mapping, [EXAMPLE]) == {"_schema": ["Invalid input type (a JSON object is required)."]}
    assert lookup(EXAMPLE, "alert.labels.region") == "us-east" and lookup(EXAMPLE, "alert.nope") is MISSING


def test_the_documented_body_schema_agrees_with_the_receiver() -> None:
    validator = Draft202012Validator(json_schema(GENERIC["mapping"]),
                                     format_checker=Draft202012Validator.FORMAT_CHECKER)
    assert validator.is_valid(EXAMPLE)
    numeric_host = alert_body()
    numeric_host["alert"]["labels"]["host"] = 4711
    assert validator.is_valid(numeric_host) and validate_payload("generic", numeric_host, GENERIC) == {}
    no_host = alert_body()
    del no_host["alert"]["labels"]["host"]
    for bad in (no_host, alert_body(metric=""), alert_body(startsAt="yesterday"), alert_body(direction="up"),
                {"alert": {**EXAMPLE["alert"], "labels": ["db-1"]}}):
        assert not validator.is_valid(bad) and validate_payload("generic", bad, GENERIC) != {}


def _normalize(body: dict[str, Any]) -> dict[str, Any]:
    return normalize({"event_id": "e1", "source": "generic", "received_at": 1.77e9, "payload": body},
                     StageContext(config=CONFIG))


def test_normalized_example_reads_every_mapped_field() -> None:
    alert = _normalize(EXAMPLE)
    assert alert["alert_key"] == alert_key("generic", "disk_used_percent", "db-primary-01")
    assert {k: alert[k] for k in ("kind", "entity_name", "current_value", "threshold_value", "breach_direction",
                                  "status", "severity", "timestamp")} == {
        "kind": "health", "entity_name": "db-primary-01.dc1.example.com", "current_value": 97.5,
        "threshold_value": 90, "breach_direction": "above", "status": "firing", "severity": "critical",
        "timestamp": "2026-03-14T08:26:53Z"}
    assert alert["attributes"] == {"alert_id": "a-7f3c91", "region": "us-east",
                                   "runbook": "https://runbooks.example.com/disk-full"}


@pytest.mark.parametrize(("status", "expected"), [("resolved", "resolved"), ("ok", "resolved"),
                                                  ("alerting", "firing"), ("pending", "firing"), (None, "firing")])
def test_status_reads_through_the_value_map(status: str | None, expected: str) -> None:
    body = alert_body(status=status)
    assert _normalize(body)["status"] == expected


@pytest.mark.parametrize(("label", "severity"), [("critical", "critical"), ("warning", "medium"),
                                                 ("error", "high"), ("page-me", "medium"), (None, "medium")])
def test_severity_from_the_senders_label(label: str | None, severity: str) -> None:
    assert _normalize(alert_body(severity=label))["severity"] == severity


def test_absent_optional_fields_read_as_null() -> None:
    body = {"alert": {"labels": {"host": 17}, "metric": "cpu", "startsAt": "2026-03-14T09:26:53-05:00"}}
    alert = _normalize(body)
    assert alert["entity_id"] == "17" and alert["entity_name"] == "17" and alert["status"] == "firing"
    assert alert["current_value"] is None and alert["attributes"] == {"alert_id": None, "region": None, "runbook": None}
    assert alert["timestamp"] == "2026-03-14T14:26:53Z"


# --- the receiver, over real HTTP ---


@REDIS_ONLY
def test_send_cli_signs_and_posts_the_example(receiver_only: dict) -> None:
    def send() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "switchboard.cli", "send", "generic", str(EXAMPLE_FILE),
                               "--url", receiver_only["url"]], env=receiver_only["env"], capture_output=True,
                              text=True, timeout=30)

    first = send()
    assert first.returncode == 0, first.stdout + first.stderr
    code, _, body = first.stdout.partition(" ")
    assert code == "202" and json.loads(body)["status"] == "accepted"
    again = send()  # a new request id, the same alert id and status: the payload key makes it a duplicate
    assert again.stdout.startswith("200 ") and json.loads(again.stdout[4:])["status"] == "duplicate"


@REDIS_ONLY
def test_resolve_of_a_seen_alert_is_not_a_duplicate(receiver_only: dict) -> None:
    body = alert_body()
    assert post(receiver_only, "generic", body)
    retry = json.dumps(body).encode()
    assert send_raw(receiver_only, retry, signed(retry)).json()["status"] == "duplicate"
    resolved = json.dumps({"alert": {**body["alert"], "status": "resolved"}}).encode()
    assert send_raw(receiver_only, resolved, signed(resolved)).status_code == 202


@REDIS_ONLY
@pytest.mark.parametrize(("headers", "detail"), [
    (lambda b: signed(b, "not-the-secret"), "signature does not match"),
    (lambda b: {"Content-Type": "application/json", "X-Signature-256": sign_hmac(b, SECRET)},
     "signature must start with 'sha256='"),
    (lambda b: {"Content-Type": "application/json"}, "signature header missing"),
])
def test_401_bad_signature(receiver_only: dict, headers, detail: str) -> None:
    body = json.dumps(alert_body()).encode()
    r = send_raw(receiver_only, body, headers(body))
    assert r.status_code == 401 and r.json() == {"error": "invalid signature", "detail": detail}


@REDIS_ONLY
def test_422_names_the_missing_mapped_path(receiver_only: dict) -> None:
    data = alert_body()
    del data["alert"]["labels"]["host"]
    del data["alert"]["metric"]
    body = json.dumps(data).encode()
    r = send_raw(receiver_only, body, signed(body))
    assert r.status_code == 422
    assert r.json() == {"error": "payload does not match the schema", "fields": {
        "alert.labels.host": ["Missing data for required field (mapping.entity_id)."],
        "alert.metric": ["Missing data for required field (mapping.metric_type)."]}}


@REDIS_ONLY
def test_422_naive_or_unrepresentable_timestamp(receiver_only: dict) -> None:
    for stamp, message in (("2026-03-14T09:26:53", "Not a valid aware datetime. (mapping.timestamp)"),
                           ("0001-01-01T00:00:00+05:00", "Not a valid datetime (out of range in UTC). "
                                                         "(mapping.timestamp)")):
        body = json.dumps(alert_body(startsAt=stamp)).encode()
        r = send_raw(receiver_only, body, signed(body))
        assert r.status_code == 422 and r.json()["fields"] == {"alert.startsAt": [message]}


# --- end to end through a real worker ---


@REDIS_ONLY
def test_generic_alert_pages_then_resolves_through_a_worker(pipeline: dict, clean_sandbox) -> None:
    firing = alert_body(startsAt="2026-03-14T09:26:53+05:30")
    host = firing["alert"]["labels"]["host"]
    down = wait_outcome(pipeline, post(pipeline, "generic", firing))
    up = wait_outcome(pipeline, post(pipeline, "generic", alert_body(host, status="ok", severity="info")))
    assert down["outcome"] == up["outcome"] == "dispatched"
    key = alert_key("generic", "disk_used_percent", host)
    assert down["alert_key"] == up["alert_key"] == key

    entries = requests.get(f"{clean_sandbox.url}/_sandbox/requests", params={"path": "/v2/enqueue"}, timeout=5).json()
    events = [e["json"] for e in entries if e["json"].get("dedup_key") == key]
    assert [e["event_action"] for e in events] == ["trigger", "resolve"]
    trigger = events[0]
    assert trigger["payload"]["severity"] == "critical" and trigger["payload"]["source"] == host
    assert trigger["payload"]["timestamp"] == "2026-03-14T03:56:53Z"
    assert trigger["payload"]["custom_details"]["attributes"]["region"] == "us-east"
    alerts = requests.get(f"{clean_sandbox.url}/_sandbox/pagerduty/alerts", params={"dedup_key": key}, timeout=5).json()
    assert [a["status"] for a in alerts] == ["resolved"]
