"""The shared HTTP layer (``clients/http.py``): how vendor answers and network failures are classified, and
which requests may be resent in-process (never a POST that may have been delivered)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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


# --- what goes on the wire: headers, body, redirects, connection reuse -------------------------------------


@contextmanager
def recording_server() -> Iterator[tuple[str, list[dict], list[int]]]:
    """A loopback HTTP/1.1 server that records each request (method, path, headers, body) and the
    connections it accepted; a POST to /moved-away answers 301 to /new-home, anything else 200 {"ok": true}."""
    seen: list[dict] = []
    connections: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            connections.append(1)

        def _answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append({"method": self.command, "path": self.path, "headers": self.headers, "body": body})
            status, extra, reply = 200, {}, b'{"ok": true}'
            if self.path == "/moved-away":
                status, extra, reply = 301, {"Location": "/new-home"}, b"moved"
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **extra}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen, connections
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_redirect_is_a_permanent_error_and_is_not_followed() -> None:
    """requests would replay a POST redirected by 301 as a GET without its body, and the GET's 200 would
    look like a delivery."""
    with recording_server() as (url, seen, _):
        exc = raises_vendor_error(lambda: call("POST", url + "/moved-away", timeout=(1.0, 2.0), json={"a": 1}))
    assert (exc.status, exc.retryable) == (301, False)
    assert "redirect to /new-home not followed" in exc.message
    assert [(r["method"], r["path"]) for r in seen] == [("POST", "/moved-away")]


def test_wire_headers_body_and_one_kept_connection() -> None:
    """The session's default headers under the caller's (a caller's header wins whatever its case), the
    JSON body as sent, and one connection for many calls even when the caller never reads the answer."""
    payload = {"summary": "Trunk down at Zürich", "severity": "critical", "count": 3}
    with recording_server() as (url, seen, connections):
        for _ in range(20):
            call("POST", url + "/v2/enqueue", timeout=(1.0, 2.0), json=payload,
                 headers={"accept": "application/vnd.pagerduty+json;version=2", "X-Api-Key": "k"})
        answer = call("GET", url + "/incidents", timeout=(1.0, 2.0),
                      params={"statuses[]": ["triggered", "acknowledged"]})
    assert answer.json() == {"ok": True} and len(seen) == 21
    assert len(connections) == 1
    first = seen[0]
    assert json.loads(first["body"]) == payload
    assert first["headers"]["Content-Type"] == "application/json"
    assert first["headers"].get_all("Accept") == ["application/vnd.pagerduty+json;version=2"]
    assert first["headers"]["X-Api-Key"] == "k"
    assert first["headers"]["User-Agent"].startswith("python-requests/")
    assert first["headers"]["Content-Length"] == str(len(first["body"]))
    assert seen[-1]["path"] == "/incidents?statuses%5B%5D=triggered&statuses%5B%5D=acknowledged"
    assert seen[-1]["headers"]["Accept"] == "*/*" and seen[-1]["body"] == b""
