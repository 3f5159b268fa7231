"""The shared HTTP layer (``clients/http.py``): how vendor answers and network failures are classified, and
which requests may be resent in-process (never a POST that may have been delivered)."""

from __future__ import annotations

import json
import socket
import threading

import pytest

from clients.http import VendorError, call
from tests.client_support import RESOLUTIONS, WORKITEMS, raises_vendor_error, resolution, statuses, workitem
from tests.posting import Sandbox
from vendor_sandbox import credentials as creds

# --- the shared HTTP layer ---------------------------------------------------------------------------------


def test_classification_of_vendor_answers(sb: Sandbox) -> None:
    vendor_body = {"error": "invalid resolution", "errors": ["$.device_mac: 'zz' does not match"]}
    sb.faults("orchestrator", script=[{"status": 429, "retry_after": 2}, {"status": 503},
                                      {"status": 400, "body": vendor_body}, {"status": 408}])
    url = sb.url + RESOLUTIONS

    def post() -> VendorError:
        return raises_vendor_error(lambda: call("POST", url, timeout=(1.0, 5.0), json=resolution()))

    throttled = post()
    assert (throttled.status, throttled.retryable, throttled.retry_after_s) == (429, True, 2.0)
    unavailable = post()
    assert (unavailable.status, unavailable.retryable, unavailable.retry_after_s) == (503, True, None)
    rejected = post()
    assert (rejected.status, rejected.retryable) == (400, False)
    assert json.loads(rejected.body) == vendor_body and "invalid resolution" in str(rejected)
    timeout = post()
    assert (timeout.status, timeout.retryable) == (408, True)
    assert statuses(sb, RESOLUTIONS) == [429, 503, 400, 408]
    assert call("POST", url, timeout=(1.0, 5.0), json=resolution(),
                headers={"X-Api-Key": creds.ORCHESTRATOR_API_KEY}).status_code == 200


def test_vendor_rate_limit_reaches_the_caller_with_retry_after(sb: Sandbox, genesys: tuple) -> None:
    client, _ = genesys
    sb.send("POST", "/_sandbox/ratelimit/genesys", {"limit": 1, "window_s": 30})
    client.create_workitem(workitem())
    exc = raises_vendor_error(lambda: client.create_workitem(workitem()))
    assert exc.status == 429 and exc.retryable is True
    assert exc.retry_after_s is not None and 28 <= exc.retry_after_s <= 30
    assert json.loads(exc.body)["code"] == "too.many.requests.retry.after"
    assert statuses(sb, WORKITEMS) == [200, 429] and sb.oauth("genesys")["token_requests"] == 1


def test_connection_refused_is_retryable_network_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exc = raises_vendor_error(lambda: call("GET", f"http://127.0.0.1:{port}/", timeout=(1.0, 1.0)))
    assert exc.status is None and exc.retryable is True and "network error" in exc.message


class DroppingServer:
    """A loopback TCP server that reads each whole HTTP request, counts it, and closes without answering
    (a vendor that received the request, maybe acted, and lost the connection)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.received: list[bytes] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                data = chunk = b"-"
                while chunk and b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    data += chunk
                head, _, body = data[1:].partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while chunk and len(body) < length:
                    chunk = conn.recv(65536)
                    body += chunk
                if head:
                    self.received.append(body)

    def __enter__(self) -> DroppingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


def test_dropped_connection_is_retryable_network_error() -> None:
    with DroppingServer() as server:
        exc = raises_vendor_error(lambda: call("GET", server.url + "/x", timeout=(1.0, 2.0)))
    assert exc.status is None and exc.retryable is True
    assert 1 <= len(server.received) <= 2  # a GET may be resent in-process


def test_post_delivered_before_the_connection_dropped_is_not_resent_in_process() -> None:
    with DroppingServer() as server:
        exc = raises_vendor_error(lambda: call("POST", server.url + "/dial", timeout=(1.0, 2.0),
                                               json={"phoneNumber": "+15551234567"}))
    assert exc.status is None and exc.retryable is True
    assert [json.loads(body) for body in server.received] == [{"phoneNumber": "+15551234567"}]


def test_environment_proxy_settings_are_still_honoured(sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """The session reads the environment once unless a proxy variable is set; then it reads it per request."""
    from clients import http

    assert not http.uses_proxy_settings({"PATH": "/bin", "HTTPS_PROXY": "", "REQUESTS_CA_BUNDLE": "/ca.pem"})
    assert http.uses_proxy_settings({"HTTPS_PROXY": "http://proxy:3128"})
    assert http.ca_bundle({"CURL_CA_BUNDLE": "/b.pem", "REQUESTS_CA_BUNDLE": "/a.pem"}) == "/a.pem"
    assert http.ca_bundle({"CURL_CA_BUNDLE": ""}) is None
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/bundle-for-the-test.pem")
    monkeypatch.setattr(http, "_sessions", {})
    assert http.session().verify == "/etc/ssl/bundle-for-the-test.pem" and not http.session().trust_env
    with socket.socket() as s:  # a proxy address where nothing listens: going through it must fail
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    url = sb.url + RESOLUTIONS
    headers = {"X-Api-Key": creds.ORCHESTRATOR_API_KEY}
    monkeypatch.setattr(http, "_sessions", {})
    assert call("POST", url, timeout=(1.0, 5.0), json=resolution(), headers=headers).status_code == 200
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{closed_port}")
    monkeypatch.setenv("no_proxy", "")
    monkeypatch.setattr(http, "_sessions", {})  # a new process's session reads the environment once
    error = raises_vendor_error(lambda: call("POST", url, timeout=(1.0, 5.0), json=resolution(), headers=headers))
    assert error.retryable and error.status is None and "network" in str(error)
