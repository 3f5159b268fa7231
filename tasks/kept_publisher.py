"""Publishing a task message through producers kept between publishes: the receiver's publish onto the ingest
queue (webhook_app/receiver.py: once, ``retry=False``, answered 503 if the broker does not take it) and the
ingest task's publish of one dispatch per target (fan_out).

``Signature.apply_async`` acquires a producer from kombu's pool, whose release drops the producer's channel, so
every publish binds (copies) the queue, its exchange and binding again; it also resolves the route, merges the
task's options and builds the result machinery we never use. That was half of a publish's CPU: ~15% of a
webhook's in the receiver (``python -m bench.profile receiver``), and 0.5 -> 0.2 ms per dispatch publish in a
worker. Here a producer keeps its channel, each queue is declared once per connection, and a publish is
Celery's own two steps: ``amqp.create_task_message`` (protocol 2, the same headers; inside a task, the same
root and parent ids ``send_task`` gives) and ``amqp.send_task_message`` (the ``before_task_publish`` signal, so
``published_at`` is stamped, and the same publish options, retry policy included). tests/test_ingest_publisher.py
and tests/test_kept_publisher.py check the message equals ``apply_async``'s.

Why a hand-written pool of kept producers instead of kombu's ``ProducerPool``: that pool's release is what drops
the channel. Each kept producer has its own connection (kombu connections are not shared between threads); one
that raised is closed and never reused, so the next publish connects afresh; at most ``keep`` idle ones are kept.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from celery import Celery, Signature
from celery.utils.nodenames import anon_nodename
from kombu import Connection, Producer
from kombu import Queue as KombuQueue
from kombu.utils.functional import retry_over_time
from kombu.utils.uuid import uuid

log = logging.getLogger(__name__)
T = TypeVar("T")


def _log_retry(exc: BaseException, intervals: Iterator[float], retries: int) -> float:
    interval = next(intervals)
    log.warning("broker refused a publish's connection (%s), retry %d in %.1fs", type(exc).__name__,
                retries + 1, interval)
    return interval


@dataclass
class _Kept:
    connection: Connection
    producer: Producer
    queues: dict[str, KombuQueue] = field(default_factory=dict)  # bound to the producer's channel, declared on it


class KeptPublisher:
    def __init__(self, celery: Celery, queue_names: Iterable[str], keep: int = 8) -> None:
        self.celery = celery
        self.queue_names = frozenset(queue_names)
        self.keep = keep
        self._errors: tuple[type[BaseException], ...] | None = None
        self._start_process()

    def _start_process(self) -> None:
        """This process's own state: none of a parent's sockets, its own origin."""
        # append and pop are atomic (CPython): a stack without queue.LifoQueue's locks; with the origin below,
        # ~10% off building a message (49 -> 44 µs in a loop)
        self._idle: deque[_Kept] = deque()
        self._pid = os.getpid()
        self._origin = anon_nodename()  # what Celery computes per message (a gethostname call): fixed per process

    def publish(self, signature: Signature, *, headers: dict[str, Any], argsrepr: str,
                timeout_s: float | None = None, retry: bool | None = None) -> None:
        """Publish ``signature`` (one task, or a chain) once on its queue. ``retry=None`` follows the app's
        ``task_publish_retry`` and its policy (a task's publish waits out a broker restart); ``retry=False``
        raises if the broker did not take it (for RabbitMQ: did not confirm it) within ``timeout_s``."""
        self._publish(signature, headers, argsrepr, timeout_s, retry, lambda producer: None)

    def _publish(self, signature: Signature, headers: dict[str, Any], argsrepr: str, timeout_s: float | None,
                 retry: bool | None, after: Callable[[Producer], T]) -> T:
        """Publish, then ``after(producer)`` while the producer is still this call's (tasks/redis_push.py reads
        what its channel recorded)."""
        wanted = signature.options.get("queue") or self.celery.conf.task_default_queue
        if wanted not in self.queue_names:
            raise ValueError(f"this publisher publishes on {sorted(self.queue_names)}, not {wanted!r}")
        kept, bound = self._ready(wanted, retry)
        try:
            options: dict[str, Any] = {"queue": bound, "declare": [], "headers": headers, "argsrepr": argsrepr}
            if retry is not None:
                options["retry"] = retry
            if timeout_s is not None:
                options.update(timeout=timeout_s, confirm_timeout=timeout_s)
            if signature.subtask_type:  # a chain (the per-stage grain): Celery builds the links' message, and
                # publishes it through its own producer pool (chain.run does not pass ``producer`` on)
                signature.apply_async(producer=kept.producer, **options)
            else:
                self._send(kept.producer, signature, options)
            result = after(kept.producer)
        except BaseException:
            self._discard(kept)
            raise
        self._release(kept)
        return result

    def _send(self, producer: Producer, signature: Signature, options: dict[str, Any]) -> None:
        root_id = parent_id = None
        parent = self.celery.current_worker_task
        if parent:  # as send_task: a task's publish carries its root and parent (Flower shows the tree)
            root_id = parent.request.root_id or parent.request.id
            parent_id = parent.request.id
        # as send_task: a task registered in this process sends its own ignore_result (the app's setting unless
        # the task overrides it); a task known only by name sends none and the worker's setting decides
        task = self.celery.tasks.get(signature.task)
        amqp = self.celery.amqp
        kwargs = dict(signature.kwargs)
        message = amqp.create_task_message(uuid(), signature.task, tuple(signature.args), kwargs,
                                           reply_to=self.celery.thread_oid, root_id=root_id, parent_id=parent_id,
                                           ignore_result=task.ignore_result if task is not None else None,
                                           argsrepr=options["argsrepr"], kwargsrepr=repr(kwargs), origin=self._origin)
        amqp.send_task_message(producer, signature.task, message, **options)

    def idle(self) -> int:
        """Producers kept for the next publishes (a broken one is never among them)."""
        return len(self._idle)

    def close(self) -> None:
        while True:
            try:
                self._discard(self._idle.pop())
            except IndexError:
                return

    def _ready(self, name: str, retry: bool | None) -> tuple[_Kept, KombuQueue]:
        """A kept producer with queue ``name`` bound and declared on its channel. Connecting and declaring come
        before the publish's own retry (``send_task_message`` -> ``Producer.publish``), so when the publish
        retries they retry too, under the same policy: a broker that refuses connections for a while (a
        restart; RabbitMQ's "connection limit reached"), which kombu does not count as recoverable, is waited
        out as the publish would be. Found by tests/reliability/test_faults_rabbitmq.py: an ingest task whose
        kept connection had been closed raised NotAllowed here and its event ended without an outcome.
        The retry's policy and error classes are looked up only once a first attempt has failed: nearly every
        publish finds a kept producer and pays nothing for them."""
        try:
            return self._ready_once(name)
        except BaseException as exc:
            retrying = self.celery.conf.task_publish_retry if retry is None else retry
            if not retrying or not isinstance(exc, self._connection_errors()):
                raise
            log.warning("broker refused a publish's connection (%s), retrying", type(exc).__name__)
        policy = self.celery.conf.task_publish_retry_policy or {}
        return retry_over_time(self._ready_once, self._connection_errors(), args=(name,), errback=_log_retry,
                               max_retries=policy.get("max_retries", 3),
                               interval_start=policy.get("interval_start", 0),
                               interval_step=policy.get("interval_step", 0.2),
                               interval_max=policy.get("interval_max", 0.2))

    def _ready_once(self, name: str) -> tuple[_Kept, KombuQueue]:
        kept = self._acquire()
        try:
            return kept, self._bound(kept, name)
        except BaseException:
            self._discard(kept)
            raise

    def _connection_errors(self) -> tuple[type[BaseException], ...]:
        if self._errors is None:
            probe = self.celery.connection_for_write()  # not connected: only its transport's error classes
            self._errors = tuple(probe.connection_errors) + tuple(probe.channel_errors)
            probe.release()
        return self._errors

    def _acquire(self) -> _Kept:
        if os.getpid() != self._pid:  # forked (gunicorn --preload, a prefork pool): the parent's sockets are not ours
            self._start_process()
        try:
            return self._idle.pop()
        except IndexError:
            connection = self._connect()
            try:
                return _Kept(connection, Producer(connection.default_channel))
            except BaseException:
                connection.release()
                raise

    def _connect(self) -> Connection:
        """A new connection for a kept producer (not connected yet)."""
        return self.celery.connection_for_write()

    def _bound(self, kept: _Kept, name: str) -> KombuQueue:
        bound = kept.queues.get(name)
        if bound is None:
            bound = self.celery.amqp.queues[name].bind(kept.producer.channel)
            # Declared once per connection: on a fresh RabbitMQ vhost, a message published before any worker
            # declared the queue would otherwise be dropped as unroutable.
            kept.producer.maybe_declare(bound)
            kept.queues[name] = bound
        return bound

    def _release(self, kept: _Kept) -> None:
        if len(self._idle) >= self.keep:
            self._discard(kept)
        else:
            self._idle.append(kept)

    @staticmethod
    def _discard(kept: _Kept) -> None:
        try:
            kept.connection.release()
        except Exception:  # noqa: BLE001, S110 - a connection that already broke has nothing left to close
            pass
