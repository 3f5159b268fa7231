"""Pure logic without broker or network: signatures, normalization, routing, payloads, config errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest

from clients.http import parse_retry_after
from switchboard.config import ConfigError, load_config
from switchboard.payloads.pagerduty import pagerduty_event
from switchboard.signatures import SignatureError, sign_standard_webhooks, verify_standard_webhooks
from switchboard.stages import StageContext
from switchboard.stages.enrich import enrich
from switchboard.stages.normalize import alert_key, normalize
from switchboard.stages.route import route
from tests.helpers import ROOT

CONFIG = load_config(ROOT / "config")
CTX = StageContext(config=CONFIG)
SAMPLES = ROOT / "samples"
PD_SCHEMA = json.loads((ROOT / "vendor_sandbox" / "specs" / "pagerduty-events-v2.schema.json").read_text())


def alert_from(sample: str, source: str) -> dict:
    envelope = {"event_id": "e1", "source": source, "received_at": 1715783520.0,
                "payload": json.loads((SAMPLES / sample).read_text())}
    return route(enrich(normalize(envelope, CTX), CTX), CTX)


def test_standard_webhooks_spec_test_vector() -> None:
    headers = {"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp": "1614265330",
               "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}
    body = b'{"test": 2432232314}'
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    assert verify_standard_webhooks(body, headers, [secret], now=1614265330) == "msg_p5jXN8AQM9LWM0D4loKWxJek"
    assert sign_standard_webhooks(body, secret, headers["webhook-id"], 1614265330) == headers
    with pytest.raises(SignatureError, match="tolerance"):
        verify_standard_webhooks(body, headers, [secret], now=1614265330 + 301)
    several = {**headers, "webhook-signature": "v1,bm90LWl0 garbage v2,xx " + headers["webhook-signature"]}
    assert verify_standard_webhooks(body, several, [secret], now=1614265330)


def test_normalize_trunk_down_and_up_share_the_alert_key() -> None:
    down = alert_from("genesys-trunk-down.json", "genesys")
    up = alert_from("genesys-trunk-up.json", "genesys")
    assert down["alert_key"] == up["alert_key"] == alert_key("genesys-cloud", "trunk_status", "trunk-us-east-01")
    assert (down["status"], down["severity"]) == ("firing", "critical")
    assert (up["status"], up["severity"]) == ("resolved", "info")
    assert down["routes"] == [{"target": "pagerduty", "priority": "critical", "rule": "trunk-health"}]


def test_normalize_converts_offsets_to_utc() -> None:
    alert = alert_from("cxone-trunk-health.json", "cxone")
    assert alert["timestamp"] == "2024-05-15T14:32:00Z"
    assert alert["severity"] == "medium" and alert["status"] == "firing"


def test_queue_breach_below_threshold_is_resolved() -> None:
    envelope = {"event_id": "e", "source": "genesys", "received_at": 0.0,
                "payload": {"eventType": "routing.queue.event",
                            "event": {"queueId": "q", "metric": "abandon_rate", "value": 0.05, "threshold": 0.1,
                                      "direction": "above", "timestamp": "2024-05-15T14:32:00+00:00"}}}
    assert normalize(envelope, CTX)["status"] == "resolved"


@pytest.mark.parametrize("sample,source", [
    ("genesys-trunk-down.json", "genesys"), ("genesys-queue-abandon.json", "genesys"),
    ("cxone-trunk-health.json", "cxone"), ("cxone-queue-status.json", "cxone"),
    ("ztp-validation-failed.json", "ztp"), ("ztp-success-callback.json", "ztp"), ("iot-temp-critical.json", "iot"),
])
def test_pagerduty_payload_matches_the_vendor_schema(sample: str, source: str) -> None:
    alert = alert_from(sample, source)
    event = pagerduty_event(alert, "rk")
    jsonschema.Draft202012Validator(PD_SCHEMA).validate(event)
    assert event["dedup_key"] == alert["alert_key"]


def test_unmapped_entity_is_still_routed() -> None:
    alert = alert_from("ztp-validation-failed.json", "ztp")
    assert alert["business_impact"] == "unmapped"
    assert alert["routing_key_env"] == "SWITCHBOARD_PD_KEY_DEFAULT"
    assert alert["routes"] == [{"target": "genesys_workitem", "priority": "default", "rule": "ztp-certificate",
                                "queue": "QUEUE_ZTP_L2_FIRMWARE", "skills": ["ZTP-L1", "Firmware-Rollback"]}]


def test_retry_after_parsing() -> None:
    assert parse_retry_after("42") == 42.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_config_errors_name_file_key_and_problem(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "config", tmp_path / "config")
    sources = tmp_path / "config" / "sources.yaml"
    sources.write_text(sources.read_text().replace("encoding: hex}", "encoding: rot13}", 1))
    routing = tmp_path / "config" / "routing.yaml"
    text = routing.read_text().replace("target: pagerduty, priority: bulk", "target: pagerduty, priority: soon")
    routing.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_config(tmp_path / "config")
    text = str(exc.value)
    assert "config/sources.yaml: sources.genesys.signature.encoding: Must be one of: hex, base64." in text
    assert "config/routing.yaml: rules.9.targets.0.priority: Must be one of: critical, default, bulk." in text


def test_unknown_target_in_routing_is_an_error(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "config", tmp_path / "config")
    routing = tmp_path / "config" / "routing.yaml"
    routing.write_text(routing.read_text().replace("target: pagerduty, priority: bulk", "target: pagrduty"))
    with pytest.raises(ConfigError, match=r"rules\.9\.targets\.0\.target: unknown target 'pagrduty'"):
        load_config(tmp_path / "config")


def test_every_task_has_an_explicit_queue_route() -> None:
    from tasks.app import ALL_QUEUES, app

    app.loader.import_default_modules()
    ours = [name for name in app.tasks if name.startswith("switchboard.")]
    assert len(ours) == 13
    for name in ours:
        route = app.amqp.router.route({}, name)
        assert route["queue"].name in ALL_QUEUES, name


def test_an_omitted_block_means_its_defaults(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "config", tmp_path / "config")
    (tmp_path / "config" / "windows.yaml").unlink()
    targets = tmp_path / "config" / "targets.yaml"
    block = "    timeout: {connect_s: 3.05, read_s: 10}\n    retry: {max_attempts: 6, base_s: 1, cap_s: 60}\n"
    tail = "    on_uncertain: resend\n"
    assert block + tail in targets.read_text()
    targets.write_text(targets.read_text().replace(block + tail, tail, 1))
    config = load_config(tmp_path / "config")
    assert config.targets["pagerduty"]["retry"] == {"max_attempts": 6, "base_s": 1.0, "cap_s": 60.0}
    assert config.targets["pagerduty"]["timeout"] == {"connect_s": 3.05, "read_s": 10.0}
    assert config.windows["dialing"]["federal_bound"] == {"start": "08:00", "end": "21:00"}
    assert config.windows["deferral"]["max_hold_s"] == 7 * 86400 and config.windows["maintenance"] == []


def test_unknown_severity_in_a_source_is_a_config_error(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "config", tmp_path / "config")
    sources = tmp_path / "config" / "sources.yaml"
    sources.write_text(sources.read_text().replace("DOWN: critical", "DOWN: catastrophic", 1))
    with pytest.raises(ConfigError, match=r"sources\.genesys\.severity\.trunk_status: 'catastrophic' is not one of"):
        load_config(tmp_path / "config")
