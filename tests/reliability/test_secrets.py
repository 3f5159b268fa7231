"""Secrets (issue 9, item 5): what needs a token asks for one, comparisons of secrets are constant-time, and no
secret, token, signature or phone number comes out of the service: not in the receiver's or the worker's logs,
not in ``switchboard trace``, not in ``switchboard dlq list`` / ``dlq show``.

Decided here: the receiver's endpoints other than the webhooks are ``/payloads/<ref>`` (bearer
``SWITCHBOARD_PAYLOAD_TOKEN``, several comma-separated during a rotation; unset: 404 for everything) and four
public ones, ``/healthz``, ``/readyz``, ``/metrics`` and ``/openapi.json``: public because probes, Prometheus
and senders read them, which is safe because the Procfile binds the receiver (and the workers' metrics
servers) to 127.0.0.1 and none of them says anything secret, which the tests check after a scenario. The
receiver has no admin endpoint: administration is the ``switchboard`` CLI, which needs the Redis URL.
"""

from __future__ import annotations

import ast
import hmac
import json
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from switchboard.logs import SECRET_ENV
from switchboard.payload_store import PayloadStore
from switchboard.signatures import sign_standard_webhooks, verify_hmac_header, verify_standard_webhooks
from switchboard.waiting import wait_for
from tests.helpers import PAYLOAD_TOKEN, ROOT, ReceiverServer
from tests.posting import Sandbox, unique_iot, wait_outcome
from tests.reliability.gunicorn_receiver import GunicornReceiver, procfile_web_args
from tests.reliability.inputs import SECRET, WRONG_SECRET, Watch, body_of

pytestmark = pytest.mark.reliability

PHONES = ["+15551230777", "+1 415 555 0123", "(212) 555-0199", "+44 20 7946 0958", "+4915123456789"]
PUBLIC = ("/healthz", "/readyz", "/metrics", "/openapi.json")


def _secret_values(env: dict[str, str]) -> list[str]:
    """Every configured secret of ``env`` (each value of a rotation list), as the log redaction knows them."""
    return sorted({v.strip() for k, raw in env.items() if SECRET_ENV.search(k) for v in raw.split(",") if v.strip()})


# --- /payloads/<ref> needs the bearer token ----------------------------------------------------------------


def _fetch(url: str, ref: str, authorization: str | None, **params: str) -> requests.Response:
    headers = {"Authorization": authorization} if authorization is not None else {}
    return requests.get(f"{url}/payloads/{ref}", headers=headers, params=params, timeout=10)


def test_payloads_need_the_bearer_token(receiver_only: dict) -> None:
    state = receiver_only["server"].state
    ref = uuid.uuid4().hex
    PayloadStore(state.redis, state.settings.key_prefix, 600).put(ref, {"alert": "full text"})
    url = receiver_only["url"]
    refused = [None, "", "Bearer", "Bearer ", f"Bearer {PAYLOAD_TOKEN[:-1]}", f"Bearer {PAYLOAD_TOKEN}x",
               f"Bearer  {PAYLOAD_TOKEN}", f"Basic {PAYLOAD_TOKEN}", PAYLOAD_TOKEN, f"Token {PAYLOAD_TOKEN}",
               f"Bearer {SECRET['genesys']}", f"Bearer {PAYLOAD_TOKEN.upper()}"]
    for authorization in refused:
        r = _fetch(url, ref, authorization)
        assert r.status_code == 401, (authorization, r.text)
        assert r.headers["WWW-Authenticate"].startswith("Bearer") and "full text" not in r.text
    assert _fetch(url, ref, None, token=PAYLOAD_TOKEN, access_token=PAYLOAD_TOKEN).status_code == 401  # header only
    for authorization in (f"Bearer {PAYLOAD_TOKEN}", f"bearer {PAYLOAD_TOKEN}"):
        r = _fetch(url, ref, authorization)
        assert r.status_code == 200 and r.json() == {"payload_ref": ref, "payload": {"alert": "full text"}}
    assert _fetch(url, uuid.uuid4().hex, None).status_code == 401  # unknown refs are not told apart without it


def test_payload_token_rotation_and_off_by_default(receiver_only: dict) -> None:
    state = receiver_only["server"].state
    ref = uuid.uuid4().hex
    PayloadStore(state.redis, state.settings.key_prefix, 600).put(ref, {"alert": "x"})
    rotating = {**receiver_only["env"], "SWITCHBOARD_PAYLOAD_TOKEN": f"new-payload-token,{PAYLOAD_TOKEN}"}
    with ReceiverServer(rotating) as server:
        for token in ("new-payload-token", PAYLOAD_TOKEN):
            assert _fetch(server.url, ref, f"Bearer {token}").status_code == 200
        assert _fetch(server.url, ref, "Bearer new-payload-token,").status_code == 401
    unset = {k: v for k, v in receiver_only["env"].items() if k != "SWITCHBOARD_PAYLOAD_TOKEN"}
    with ReceiverServer(unset) as server:
        for authorization in (None, f"Bearer {PAYLOAD_TOKEN}", "Bearer "):
            assert _fetch(server.url, ref, authorization).status_code == 404


# --- constant-time comparisons -------------------------------------------------------------------------------


@pytest.fixture
def compare_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, bytes]]:
    """Every ``hmac.compare_digest`` call made while the test runs (the real function still answers)."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    return calls


def test_signatures_compare_every_secret_with_compare_digest(compare_calls: list) -> None:
    body = b'{"x": 1}'
    secrets = ["first-secret", "second-secret", "third-secret"]
    from switchboard.signatures import sign_hmac

    verify_hmac_header(body, sign_hmac(body, "first-secret"), secrets)  # the first matches: no early exit
    assert len(compare_calls) == 3
    compare_calls.clear()
    sw = [SECRET["iot"], SECRET["ztp"]]
    headers = sign_standard_webhooks(body, SECRET["iot"], "msg_1", 1_700_000_000)
    signature = headers["webhook-signature"]
    headers["webhook-signature"] = f"{signature} {signature}"
    assert verify_standard_webhooks(body, headers, sw, now=1_700_000_000) == "msg_1"
    assert len(compare_calls) == 4  # every entry against every secret


def test_payload_token_compared_with_compare_digest(receiver_only: dict, compare_calls: list) -> None:
    rotating = {**receiver_only["env"], "SWITCHBOARD_PAYLOAD_TOKEN": f"{PAYLOAD_TOKEN},older-token,oldest-token"}
    with ReceiverServer(rotating) as server:
        assert _fetch(server.url, uuid.uuid4().hex, f"Bearer {PAYLOAD_TOKEN}").status_code == 404
        assert len(compare_calls) == 3
        assert {len(a) for a, _ in compare_calls} == {32}  # digests: the lengths tell nothing either
        compare_calls.clear()
        assert _fetch(server.url, uuid.uuid4().hex, "Bearer x").status_code == 401
        assert len(compare_calls) == 3


SENSITIVE = re.compile(r"secret|token|signature|digest|password|api_?key|credential", re.I)


def test_no_secret_is_compared_with_equality_anywhere() -> None:
    """Static check of every production module: no ``==``, ``!=``, ``in`` between values named like secrets,
    tokens, signatures or digests (a constant or a ``len()`` on one side is fine). Such values go through
    ``switchboard.signatures.matches_any`` (hmac.compare_digest)."""
    found = []
    files = [p for d in ("switchboard", "webhook_app", "tasks", "clients") for p in (ROOT / d).rglob("*.py")]
    for path in files:
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if not (isinstance(node, ast.Compare) and any(isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn)
                                                        for op in node.ops)):
                continue
            operands = [node.left, *node.comparators]
            if any(isinstance(o, ast.Constant) or (isinstance(o, ast.Call) and getattr(o.func, "id", "") == "len")
                   for o in operands):
                continue
            if any(SENSITIVE.search(ast.get_source_segment(source, o) or "") for o in operands):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.get_source_segment(source, node)}")
    assert len(files) > 50
    assert not found, found
    uses = [p.relative_to(ROOT).as_posix() for p in files if "compare_digest" in p.read_text()]
    assert uses == ["switchboard/signatures.py"], uses  # the one place; the others call matches_any


# --- nothing secret comes out: logs, trace, dead letters, public endpoints -----------------------------------


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "switchboard.cli", *args], env=env, capture_output=True, text=True,
                          timeout=60, check=True)
    return done.stdout + done.stderr


@pytest.mark.parametrize("broker_kind", ["redis"], indirect=True)  # redaction does not depend on the broker
def test_no_secret_token_signature_or_phone_comes_out(pipeline: dict, clean_sandbox, tmp_path: Path) -> None:
    env = pipeline["env"]
    sb = Sandbox(clean_sandbox.url)
    customer = f"CUST-{uuid.uuid4().hex[:8]}"
    offset = (12 - datetime.now(UTC).hour + 12) % 24 - 12  # a zone where it is noon: the dial is attempted
    sb.send("PUT", f"/_sandbox/crm/customers/{customer}", {
        "phone": PHONES[0], "timezone": f"Etc/GMT{'-' if offset >= 0 else '+'}{abs(offset)}", "doNotDisturb": False,
        "name": "Acme"})
    # the vendor refuses the dial and echoes the number: it is in the dead letter's error and the trace's detail
    sb.faults("cxone", script=[{"status": 400, "count": 1, "body": {
        "error": "invalid_request", "error_description": f"phoneNumber {PHONES[0]} is not dialable"}}])
    payload = unique_iot(customerId=customer, alertType="test_cxone_dial")
    payload["contact"] = {"primary": PHONES[1], "backup": PHONES[2], "notes": f"or {PHONES[3]} / {PHONES[4]}"}
    body = body_of(payload)
    sent_signatures: list[str] = []
    with GunicornReceiver(env, tmp_path) as receiver:
        signer = Watch({**pipeline, "url": receiver.url})
        headers = signer.headers("iot", body)
        sent_signatures.append(headers["webhook-signature"].split(",", 1)[1])
        headers.update({"X-Debug-Secret": SECRET["iot"], "Authorization": f"Bearer {PAYLOAD_TOKEN}"})
        r = requests.post(f"{receiver.url}/webhooks/iot", data=body, headers=headers, timeout=10)
        assert r.status_code == 202, r.text
        event_id = r.json()["event_id"]
        # forged and malformed requests carrying secrets and phone numbers: rejected, and logged as rejected
        forged = signer.headers("genesys", body, secret=WRONG_SECRET)
        sent_signatures.append(forged["X-Genesys-Signature"])
        r = requests.post(f"{receiver.url}/webhooks/genesys", data=body, headers=forged, timeout=10)
        assert r.status_code == 401
        bad = f'{{"phone": "{PHONES[0]}", "phone": "{PHONES[1]}"}}'.encode()
        assert requests.post(f"{receiver.url}/webhooks/cxone", data=bad, headers=signer.headers("cxone", bad),
                             timeout=10).status_code == 400
        trace = wait_outcome(pipeline, event_id)
        assert trace["outcome"] == "dead_lettered"
        assert _fetch(receiver.url, event_id, f"Bearer {PAYLOAD_TOKEN}").status_code in (200, 404)
        assert _fetch(receiver.url, event_id, f"Bearer {SECRET['genesys']}").status_code == 401
        public = {path: requests.get(f"{receiver.url}{path}", timeout=10) for path in PUBLIC}
        receiver_log = receiver.log_text()
    assert all(r.status_code == 200 for r in public.values()), {p: r.status_code for p, r in public.items()}
    wait_for(lambda: event_id in pipeline["worker"].log_path.read_text(), 10, 0.1, "the event in the worker log")
    [entry] = [e for e in map(json.loads, _cli(env, "dlq", "list", "--json", "--limit", "100000").splitlines())
               if e["event_id"] == event_id]
    outputs = {
        "receiver log": receiver_log,
        "worker log": pipeline["worker"].log_path.read_text(),
        "switchboard trace": _cli(env, "trace", event_id),
        "switchboard dlq list": _cli(env, "dlq", "list", "--limit", "100000"),
        "switchboard dlq list --json": json.dumps(entry),
        "switchboard dlq show": _cli(env, "dlq", "show", entry["id"]),
        **{f"GET {path}": r.text for path, r in public.items()},
    }
    assert "rejected webhook source=genesys status=401" in receiver_log and event_id in receiver_log
    assert "[phone] is not dialable" in outputs["switchboard trace"]          # redacted, not dropped
    assert "[phone]" in outputs["switchboard dlq show"] and customer in outputs["switchboard dlq show"]
    leaks = [*PHONES, "5551230777", "4155550123", *_secret_values(env), *sent_signatures]
    found = {(where, leak) for where, text in outputs.items() for leak in leaks if leak in text}
    assert not found, sorted(found)


def test_the_receiver_and_worker_metrics_listen_on_loopback_only() -> None:
    args = procfile_web_args({}, 8000)
    assert args[args.index("--bind") + 1].startswith("127.0.0.1:")
    assert 'addr="127.0.0.1"' in (ROOT / "tasks" / "worker_metrics.py").read_text()
