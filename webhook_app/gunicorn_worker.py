"""gunicorn worker class of the receiver (``-k webhook_app.gunicorn_worker.DeadlineSyncWorker``): the sync
worker with one deadline for reading each request.

Why: gunicorn's sync worker reads a request from a blocking socket with no timeout. A client that sends
its headers or body slowly (slow loris) holds the worker until the arbiter's ``--timeout`` kills it (30 s,
and that request gets a 500); two such clients hold both of the Procfile's workers, so every sender waits.
Measured before this class: two connections that sent one byte of their body stopped a two-worker receiver
for 31 s. Here each connection has ``service.read_timeout_s`` (config/service.yaml) in total to deliver its
request; every read waits at most until that deadline. A body not in by then is answered 408 by the
receiver (``webhook_app.receiver``); headers not in by then end the connection.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

from gunicorn.workers.sync import SyncWorker


class RequestTimeout(TimeoutError):
    """The client did not deliver its request within the read deadline."""


class DeadlineSocket(socket.socket):
    """A connected socket whose reads share one deadline; each write may take the whole budget again."""

    budget_s: float
    deadline: float

    @classmethod
    def adopt(cls, sock: socket.socket, budget_s: float) -> DeadlineSocket:
        adopted = cls(fileno=sock.detach())
        adopted.budget_s = budget_s
        adopted.deadline = time.monotonic() + budget_s
        return adopted

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise RequestTimeout(f"request not received within {self.budget_s:g} s")
        self.settimeout(remaining)
        try:
            return super().recv(bufsize, flags)
        except TimeoutError as exc:
            raise RequestTimeout(f"request not received within {self.budget_s:g} s") from exc

    def sendall(self, data: Any, flags: int = 0) -> None:
        # the answer (408 included) is not bound by the read deadline, which may have passed already
        self.settimeout(self.budget_s)
        super().sendall(data, flags)


class _QuietTimeouts(logging.Filter):
    """gunicorn logs a socket error with its traceback; a slow client is one warning line, not a stack."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], RequestTimeout):
            record.msg, record.args = "closed a connection: %s", (record.exc_info[1],)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class DeadlineSyncWorker(SyncWorker):
    def init_process(self) -> None:
        self.log.error_log.addFilter(_QuietTimeouts())
        super().init_process()

    def handle(self, listener: socket.socket, client: socket.socket, addr: Any) -> None:
        super().handle(listener, DeadlineSocket.adopt(client, self.read_timeout_s()), addr)

    def read_timeout_s(self) -> float:
        # the app's current config (it follows reloads), read when the connection is accepted
        return float(self.wsgi.extensions["switchboard"].config.service["read_timeout_s"])
