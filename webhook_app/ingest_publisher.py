"""The receiver's publish of an accepted event onto the ingest queue, through producers kept between requests.

``Signature.apply_async`` per webhook acquires a producer from kombu's pool, whose release drops the producer's
channel, so every publish binds (copies) the queue, its exchange and binding again; it also resolves the route,
merges the task's options and builds the result machinery we never use. That was half of a publish's CPU and
~15% of a webhook's (``python -m bench.profile receiver``). Here a producer keeps its channel, the queue is
declared once per connection, and a publish is Celery's own two steps: ``amqp.create_task_message`` (protocol 2,
the same headers) and ``amqp.send_task_message`` (the ``before_task_publish`` signal, so ``published_at`` is
stamped, and the same publish options). tests/test_ingest_publisher.py checks the message equals
``apply_async``'s.

Why a hand-written pool of kept producers instead of kombu's ``ProducerPool``: that pool's release is what drops
the channel. Each kept producer has its own connection (kombu connections are not shared between threads); one
that raised is closed and never reused, so the next request connects afresh; at most ``keep`` idle ones are kept.
"""

from __future__ import annotations

import os
import queue
from dataclasses import dataclass
from typing import Any

from celery import Celery, Signature
from kombu import Connection, Producer
from kombu import Queue as KombuQueue
from kombu.utils.uuid import uuid

from tasks.app import INGEST_QUEUE


@dataclass
class _Kept:
    connection: Connection
    producer: Producer
    queue: KombuQueue  # bound to the producer's channel, declared on it


class IngestPublisher:
    def __init__(self, celery: Celery, queue_name: str = INGEST_QUEUE, keep: int = 8) -> None:
        self.celery = celery
        self.queue_name = queue_name
        self.keep = keep
        self._idle: queue.LifoQueue[_Kept] = queue.LifoQueue()
        self._pid = os.getpid()

    def publish(self, signature: Signature, *, headers: dict[str, Any], argsrepr: str, timeout_s: float) -> None:
        """Publish ``signature`` (one task, or a chain) once, no retry: raises if the broker did not take it
        (for RabbitMQ: did not confirm it) within ``timeout_s``."""
        wanted = signature.options.get("queue", self.queue_name)
        if wanted != self.queue_name:
            raise ValueError(f"this publisher publishes on {self.queue_name!r}, not {wanted!r}")
        kept = self._acquire()
        try:
            options = {"queue": kept.queue, "declare": [], "retry": False, "headers": headers, "argsrepr": argsrepr,
                       "timeout": timeout_s, "confirm_timeout": timeout_s}
            if signature.subtask_type:  # a chain (the per-stage grain): Celery builds the links' message
                signature.apply_async(producer=kept.producer, **options)
            else:
                amqp = self.celery.amqp
                message = amqp.create_task_message(uuid(), signature.task, tuple(signature.args),
                                                   dict(signature.kwargs), reply_to=self.celery.thread_oid,
                                                   ignore_result=None,  # as send_task: the app's setting decides
                                                   argsrepr=argsrepr, kwargsrepr=repr(dict(signature.kwargs)))
                amqp.send_task_message(kept.producer, signature.task, message, **options)
        except BaseException:
            self._discard(kept)
            raise
        self._release(kept)

    def idle(self) -> int:
        """Producers kept for the next publishes (a broken one is never among them)."""
        return self._idle.qsize()

    def close(self) -> None:
        while True:
            try:
                self._discard(self._idle.get_nowait())
            except queue.Empty:
                return

    def _acquire(self) -> _Kept:
        if os.getpid() != self._pid:  # forked (gunicorn --preload): the parent's sockets are not ours
            self._idle = queue.LifoQueue()
            self._pid = os.getpid()
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return self._connect()

    def _connect(self) -> _Kept:
        connection = self.celery.connection_for_write()
        try:
            producer = Producer(connection.default_channel)
            bound = self.celery.amqp.queues[self.queue_name].bind(producer.channel)
            # Declared once per connection: on a fresh RabbitMQ vhost, a message published before any worker
            # declared the queue would otherwise be dropped as unroutable.
            producer.maybe_declare(bound)
        except BaseException:
            connection.release()
            raise
        return _Kept(connection, producer, bound)

    def _release(self, kept: _Kept) -> None:
        if self._idle.qsize() >= self.keep:
            self._discard(kept)
        else:
            self._idle.put(kept)

    @staticmethod
    def _discard(kept: _Kept) -> None:
        try:
            kept.connection.release()
        except Exception:  # noqa: BLE001, S110 - a connection that already broke has nothing left to close
            pass
