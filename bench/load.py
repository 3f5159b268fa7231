"""HTTP load generator on loopback: prebuilt requests sent over asyncio sockets, closed or open loop.

Why not ``requests``: on this 2-core machine a thread pool of ``requests`` sessions tops out well below
what gunicorn answers, so the generator would be the figure measured. Requests are built (and signed)
before the clock starts; each uses its own connection (``Connection: close``), as gunicorn's sync workers
close every connection anyway.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Reply:
    sent_at: float       # when the request was due (open loop) or started (closed loop)
    done_at: float
    status: int
    body: bytes

    @property
    def latency_s(self) -> float:
        return self.done_at - self.sent_at


@dataclass
class LoadResult:
    replies: list[Reply] = field(default_factory=list)
    started: float = 0.0
    ended: float = 0.0
    errors: int = 0

    @property
    def ok(self) -> list[Reply]:
        return [r for r in self.replies if r.status == 202]

    @property
    def rate(self) -> float:
        return len(self.ok) / max(1e-9, self.ended - self.started)

    def statuses(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for r in self.replies:
            out[r.status] = out.get(r.status, 0) + 1
        return out


def http_request(path: str, body: bytes, headers: dict[str, str], host: str = "127.0.0.1") -> bytes:
    """One HTTP/1.1 POST as bytes on the wire."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", "Connection: close", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _one(port: int, raw: bytes, sent_at: float, result: LoadResult) -> None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(raw)
        data = await reader.read(-1)
        writer.close()
    except OSError:
        result.errors += 1
        return
    done = time.time()
    head, _, body = data.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        result.errors += 1
        return
    result.replies.append(Reply(sent_at, done, status, body))


async def _closed(port: int, requests: Sequence[bytes], concurrency: int, result: LoadResult) -> None:
    it = iter(requests)

    async def worker() -> None:
        for raw in it:
            await _one(port, raw, time.time(), result)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _open(port: int, requests: Sequence[bytes], rate: float, result: LoadResult) -> None:
    start = time.time()
    pending = set()
    for i, raw in enumerate(requests):
        due = start + i / rate
        delay = due - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(_one(port, raw, due, result))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.gather(*pending)


def closed_loop(port: int, requests: Sequence[bytes], concurrency: int = 32) -> LoadResult:
    """Send every request as fast as ``concurrency`` connections in flight allow."""
    result = LoadResult(started=time.time())
    asyncio.run(_closed(port, requests, concurrency, result))
    result.ended = time.time()
    return result


def open_loop(port: int, requests: Sequence[bytes], rate: float) -> LoadResult:
    """Send the requests at a fixed ``rate`` per second whatever the answers (latency from when each was due)."""
    result = LoadResult(started=time.time())
    asyncio.run(_open(port, requests, rate, result))
    result.ended = time.time()
    return result


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(q * len(ordered) + 0.5)) - 1))
    return ordered[index]
