"""Sandbox app factory and servers: ``create_app()`` wires the control and vendor blueprints onto one
shared state; ``SandboxServer`` serves it on 127.0.0.1 in a daemon thread (tests); ``main`` serves it
in the foreground (``python -m vendor_sandbox --port 8900``) with keep-alive connections until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import socket
import sys
import threading
from types import TracebackType

from flask import Flask
from gunicorn.app.base import BaseApplication
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from . import control, crm, cxone, genesys, oauth, orchestrator, pagerduty, pagerduty_rest, slack, twilio
from .common import EXTENSION, SandboxState, note_arrival, sleep_latency_after

HOST = "127.0.0.1"
# Each has a ``blueprint`` and an ``init_state(state)``; ``oauth`` (token state and its control API) first.
VENDOR_MODULES = (oauth, pagerduty, pagerduty_rest, genesys, cxone, orchestrator, crm, slack, twilio)


def create_app(state: SandboxState | None = None) -> Flask:
    """A Flask app with the control API and every vendor emulator, sharing ``state`` (fresh by default)."""
    app = Flask("vendor_sandbox")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    state = state or SandboxState()
    app.extensions[EXTENSION] = state
    app.register_blueprint(control.blueprint)
    app.before_request(note_arrival)
    app.after_request(sleep_latency_after)
    for module in VENDOR_MODULES:
        module.init_state(state)
        app.register_blueprint(module.blueprint)
    return app


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class SandboxServer:
    """The sandbox on ``http://127.0.0.1:<port>`` (port 0: any free one) in a daemon thread."""

    def __init__(self, port: int = 0, *, app: Flask | None = None, quiet: bool = True) -> None:
        self.app = app or create_app()
        self._port = port
        self._quiet = quiet
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> SandboxState:
        return self.app.extensions[EXTENSION]

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("SandboxServer is not started")
        return self._server.server_port

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> SandboxServer:
        if self._server is not None:
            return self
        handler = _QuietHandler if self._quiet else None
        server = make_server(HOST, self._port, self.app, threaded=True, request_handler=handler)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="vendor-sandbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """Serve in the foreground on 127.0.0.1 until SIGINT/SIGTERM; prints the URL when ready.

    Served by gunicorn (one process, threads) rather than werkzeug's server, because werkzeug closes every
    connection after its answer and a real vendor keeps it open: against werkzeug each of our calls paid a
    new TCP connection (client and sandbox CPU, in ``make bench`` ~1 ms an event), and connection reuse by
    our clients could not be seen. One process, because the emulators' state lives in its memory."""
    parser = argparse.ArgumentParser(prog="python -m vendor_sandbox", description=__doc__)
    parser.add_argument("--port", type=int, default=8900, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    args = parser.parse_args(argv)
    try:  # our own listening socket, handed to gunicorn: a busy port is refused at once (gunicorn would retry
        # for seconds), and with --port 0 the port is known before gunicorn starts
        listener = socket.create_server((HOST, args.port))
    except OSError as exc:
        print(f"vendor sandbox: cannot listen on {HOST}:{args.port}: {exc}", file=sys.stderr)
        return 2
    _KeepAliveServer(create_app(), listener, args.quiet).run()  # gunicorn owns (and closes) the socket from here
    return 0


class _KeepAliveServer(BaseApplication):
    """gunicorn's embedded application: the sandbox app with fixed options (no command line, no config file)."""

    def __init__(self, app: Flask, listener: socket.socket, quiet: bool) -> None:
        self.application = app
        url = f"http://{HOST}:{listener.getsockname()[1]}"
        self.options = {
            "bind": f"fd://{listener.fileno()}", "workers": 1, "worker_class": "gthread", "threads": 16,
            "keepalive": 75,  # seconds an idle connection stays open, as a vendor's load balancer would
            "graceful_timeout": 3, "timeout": 0,  # a scripted fault may hold a request for long
            "accesslog": None if quiet else "-", "errorlog": "-", "loglevel": "warning",
            "when_ready": lambda _arbiter: print(f"vendor sandbox listening on {url}", flush=True),
            "on_exit": lambda _arbiter: print("vendor sandbox stopping", flush=True),
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self.application
