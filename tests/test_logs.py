"""Logs: one JSON line per record with the event's context, and nothing secret or personal in them —
neither in a formatter fed hostile records, nor in a real worker's log after a scenario full of phone
numbers and a secret sent in a header."""

from __future__ import annotations

import io
import json
import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard.config import load_config
from switchboard.logs import PATTERNS, ContextFilter, RedactingJsonFormatter, log_context, redact
from switchboard.sender import signed_headers
from switchboard.waiting import wait_for
from tests.helpers import SECRETS
from tests.posting import Sandbox, unique_iot, wait_outcome
from vendor_sandbox import credentials

PHONES = ["+15551230777", "+1 415 555 0123", "(212) 555-0199", "+44 20 7946 0958", "+4915123456789"]


def capture(monkeypatch, env: dict[str, str]) -> tuple[logging.Logger, io.StringIO]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingJsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(ContextFilter())
    logger = logging.getLogger(f"test-logs-{uuid.uuid4().hex}")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def test_formatter_redacts_phones_secrets_tokens_and_signatures(monkeypatch) -> None:
    secret = "genesys-rotating-secret-42"
    logger, stream = capture(monkeypatch, {"SWITCHBOARD_SECRET_GENESYS": f"{secret},older-secret-41"})
    with log_context(event_id="e-1", alert_key="k-1"):
        logger.info("customer %s called back on %s", PHONES[0], PHONES[1], extra={"stage": "dispatch"})
        logger.info("headers: Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig X-Genesys-Signature: %s "
                    "webhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", "ab" * 32)
        logger.info("signed with %s and older-secret-41, whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", secret)
        try:
            raise ValueError(f"vendor said: {PHONES[2]} and {PHONES[3]} are not dialable")
        except ValueError:
            logger.exception("dial failed", extra={"body": {"phoneNumber": PHONES[4], "access_token": "tok123456"}})
    text = stream.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == 4 and all(line["event_id"] == "e-1" and line["alert_key"] == "k-1" for line in lines)
    assert lines[0]["stage"] == "dispatch" and "[phone]" in lines[0]["message"]
    for leaked in [*PHONES, secret, "older-secret-41", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "eyJhbGciOiJIUzI1NiJ9",
                   "ab" * 32, "g0hM9SsE", "tok123456", "5551230777", "7946 0958"]:
        assert leaked not in text, leaked


def test_a_real_worker_logs_json_without_phones_or_secrets(pipeline: dict, clean_sandbox) -> None:
    sb = Sandbox(clean_sandbox.url)
    customer = f"CUST-{uuid.uuid4().hex[:8]}"
    offset = (12 - datetime.now(UTC).hour + 12) % 24 - 12  # a zone where it is noon: the dial is attempted
    zone = f"Etc/GMT{'-' if offset >= 0 else '+'}{abs(offset)}"
    sb.send("PUT", f"/_sandbox/crm/customers/{customer}",
            {"phone": PHONES[0], "timezone": zone, "doNotDisturb": False, "name": "Acme"})
    # The vendor refuses the dial and echoes the number: the dead-letter log line must not show it.
    sb.faults("cxone", script=[{"status": 400, "count": 1, "body": {
        "error": "invalid_request", "error_description": f"phoneNumber {PHONES[0]} is not dialable"}}])
    payload = unique_iot(customerId=customer, alertType="test_cxone_dial")
    payload["contact"] = {"primary": PHONES[1], "backup": PHONES[2], "notes": f"or {PHONES[3]} / {PHONES[4]}"}
    body = json.dumps(payload).encode()


    config = load_config(Path(pipeline["env"]["SWITCHBOARD_CONFIG_DIR"]))
    secret = SECRETS["SWITCHBOARD_SECRET_IOT"]
    headers = signed_headers(config.sources["iot"], body, secret, msg_id=f"msg_{uuid.uuid4().hex}")
    headers.update({"X-Debug-Secret": secret, "Authorization": f"Bearer {credentials.CRM_TOKEN}"})
    r = requests.post(f"{pipeline['url']}/webhooks/iot", data=body, headers=headers, timeout=10)
    assert r.status_code == 202, r.text
    event_id = r.json()["event_id"]
    trace = wait_outcome(pipeline, event_id)
    assert trace["outcome"] == "dead_lettered"
    log_path = pipeline["worker"].log_path
    wait_for(lambda: event_id in log_path.read_text(), 10, 0.1, "the event in the worker log")
    text = log_path.read_text()
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    mine = [r for r in records if r.get("event_id") == event_id]
    # the fused ingest task logs one line for its five stages, each stage's duration in it
    [ingest] = [r for r in mine if r["message"].startswith("ingest: ")]
    assert list(ingest["stages"]) == ["normalize", "dedupe", "enrich", "gate", "route"]
    assert ingest["outcome"] == "ok" and ingest["message"].startswith("ingest: routed in ")
    assert ingest["duration_ms"] == round(sum(ingest["stages"].values()), 3) > 0
    assert ingest["alert_key"] and ingest["source"] == "iot"
    assert all("duration_ms" in r and r.get("outcome") for r in mine if r.get("stage"))
    [dead] = [r for r in mine if r.get("outcome") == "dead_lettered"]
    assert "[phone] is not dialable" in dead["message"]  # logged, and redacted
    secrets = [v for k, raw in SECRETS.items() for v in raw.split(",")]
    secrets += [credentials.CRM_TOKEN, credentials.TWILIO_AUTH_TOKEN, credentials.GENESYS_CLIENT_SECRET,
                credentials.CXONE_ACCESS_KEY_SECRET, credentials.ORCHESTRATOR_API_KEY]
    for leaked in [*PHONES, "5551230777", *secrets]:
        assert leaked not in text, leaked


def test_a_record_orjson_refuses_is_still_one_redacted_json_line(monkeypatch) -> None:
    # the formatter writes with orjson, which refuses a lone surrogate (a malformed input echoed) and big ints
    logger, stream = capture(monkeypatch, {"SWITCHBOARD_SECRET_ZTP": "ztp-secret-value-9"})
    logger.info("bad text %s from %s", "\ud800", PHONES[0], extra={"count": 2**70})
    logger.info("fine: é with ztp-secret-value-9", extra={"count": 3})
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["count"] for line in lines] == [2**70, 3]
    assert lines[0]["message"] == "bad text \ud800 from [phone]"
    assert lines[1]["message"] == "fine: é with [secret]"


# --- the shortcuts before each pattern ----------------------------------------------------------------------

def redact_with_every_pattern(text: str) -> str:
    """What ``redact`` must return: every pattern run, none skipped by a shortcut."""
    for pattern, replacement in PATTERNS:
        text = pattern.sub(replacement, text)
    return text


SHAPED = [*PHONES, "555.123.4567", "555-123-4567", "(555) 123 4567", "555) 123-4567", "+1 5 55 55",
          "+33 (1) 42 68 53 00", "٥٥٥-١٢٣-٤٥٦٧", "５５５ １２３ ４５６７", "a" * 64, "sha256=" + "F0" * 32, "0" * 63,
          "Bearer abcdefgh", "basic  Zm9vOmJhcg==", "v1," + "A" * 24, "token=abc", '"api_key": "k-123"',
          "2026-12-07 10:01:02,123", "whsec_abc", "x" * 70]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(SHAPED), st.text(alphabet="0123456789 .-()+:,aAfFxX\"é٣", max_size=24),
                          st.text(max_size=8)), max_size=8))
def test_a_shortcut_never_skips_a_pattern_that_would_match(pieces: list[str]) -> None:
    line = "".join(pieces)
    assert redact(line, []) == redact_with_every_pattern(line)


@pytest.mark.parametrize("line", SHAPED)
def test_each_shape_is_redacted_as_every_pattern_would(line: str) -> None:
    text = f'{{"time": "2026-12-07 10:01:02,123", "message": "seen {line} here"}}'
    assert redact(text, []) == redact_with_every_pattern(text)
