"""The receiver's ingest message as the entry a publish would push onto the Redis broker, built without pushing
it: for the receiver's gate script (switchboard/admission.py), which pushes it itself when the broker and the
state store are one Redis database (``switchboard.broker.same_redis_database``).

Why: the gate's script and the publish's LPUSH were two round trips per webhook to the same Redis (the LPUSH
and kombu's publish around it ~10% of a gunicorn worker's time under load: ``python -m bench.profile
receiver``). In one script they are one, and accept and enqueue become one atomic step: an accepted event is
in the ingest queue, so neither a publish failing after the accept (un-accept it) nor a reply lost with the
connection (was it accepted?) leaves work for webhook_app/late_publish.py.

The entry is kombu's own. The publish runs through Celery and kombu unchanged (``KeptPublisher``: Celery's
``create_task_message`` and ``send_task_message``, so the ``before_task_publish`` signal and the same headers;
the Redis channel's body encoding, delivery tag and priority queue) down to the channel's ``_put``, which here
records the list key and the serialized message instead of sending LPUSH. Written by hand because kombu has no
"prepare a transport message without sending it"; the one method replaced is the one whose only job is the
LPUSH, and tests/test_redis_push.py checks the entry against what a real publish pushes.
"""

from __future__ import annotations

from typing import Any

from celery import Signature
from kombu import Connection, Producer
from kombu.transport import redis as kombu_redis

from switchboard.admission import PushEntry
from tasks.kept_publisher import KeptPublisher


class _RecordingChannel(kombu_redis.Channel):
    """A Redis channel whose publishes are recorded, not sent. Declaring queues still talks to Redis (the
    binding kombu keeps per queue), once per connection as for any kept producer."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recorded: list[PushEntry] = []

    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        if self._expires and queue in self._expires:
            # kombu would also PEXPIRE the queue's lists: not something one LPUSH in our script does
            raise ValueError(f"queue {queue!r} has x-expires: publish it the usual way")
        key = self._q_for_pri(queue, self._get_message_priority(message, reverse=False))
        # kombu_redis.dumps: looked up per call, as kombu's _put does (tasks/json_codec.py sets it to orjson's)
        self.recorded.append(PushEntry(self.global_keyprefix + key, kombu_redis.dumps(message)))

    def take_recorded(self) -> PushEntry:
        recorded, self.recorded = self.recorded, []
        if len(recorded) != 1:  # one queue per ingest publish: anything else is not a message we can push
            raise ValueError(f"a publish was expected to make one Redis push, it made {len(recorded)}")
        return recorded[0]


class _RecordingTransport(kombu_redis.Transport):
    Channel = _RecordingChannel


class RedisPushBuilder(KeptPublisher):
    """Builds ``PushEntry``s through kept producers whose channels record instead of sending."""

    def _connect(self) -> Connection:
        return self.celery.connection_for_write(transport=_RecordingTransport)

    def publish(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("a RedisPushBuilder records what a publish would push (build), it sends nothing")

    def build(self, signature: Signature, *, headers: dict[str, Any], argsrepr: str) -> PushEntry:
        """What publishing ``signature`` would push. Connecting (first use of a kept producer) and declaring its
        queue talk to Redis and raise its errors; the build itself does no I/O. One task only: Celery publishes
        a chain's first message through a producer of its own, not the one handed to it, so it would be sent."""
        if signature.subtask_type:
            raise ValueError(f"{signature.subtask_type} signatures are published by Celery itself: publish them")
        return self._publish(signature, headers, argsrepr, None, False, _take)


def _take(producer: Producer) -> PushEntry:
    return producer.channel.take_recorded()
