"""Profile the hot paths with py-spy (sampling, attached to the running processes, so the code is unchanged):
``python -m bench.profile receiver|pipeline [--seconds S] [--grain fused|chain] [--broker redis|rabbitmq]``.

receiver: the gunicorn workers under closed-loop load; pipeline: the ingest and dispatch pool children
draining a pre-filled backlog to the null vendor. Prints the functions with the most samples, by own time
(the frame on top) and by total time (anywhere on the stack), summed over the profiled processes.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.context import BenchContext
from bench.load import closed_loop
from bench.phases import DISPATCH, prefill
from bench.scenario import trunk_down_requests
from bench.stack import RabbitVhost, start_gunicorn, start_redis, start_sandbox, start_worker

FRAME = re.compile(r"^(?P<fn>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def _spy(pids: list[int], seconds: float, out_dir: Path, gil: bool = False) -> list[subprocess.Popen]:
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    extra = ["--gil"] if gil else []  # only samples holding the GIL: CPU spent in Python, not waits
    return [subprocess.Popen([exe, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "250", "-f", "raw",
                              "--nonblocking", *extra, "-o", str(out_dir / f"{pid}.txt")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for pid in pids]


def _label(frame: str) -> str:
    m = FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m.group("file")
    for marker in ("site-packages/", "/work/main/", "python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{m.group('fn')} ({path})"


def summarize(files: list[Path], top: int = 120) -> str:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for path in files:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            frames = [_label(f) for f in stack.split(";")]
            frames = [f for f in frames if not f.startswith("process ")]  # py-spy's "process <pid>" root
            if not frames:
                continue
            samples += n
            own[frames[-1]] += n
            for f in set(frames):
                total[f] += n
    lines = [f"{samples} samples from {len(files)} processes", "", "own%  function"]
    lines += [f"{100 * n / samples:5.1f} {f}" for f, n in own.most_common(top)]
    lines += ["", "total% function"]
    lines += [f"{100 * n / samples:5.1f} {f}" for f, n in total.most_common(top)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("target", choices=["receiver", "pipeline"])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--grain", default="fused", choices=["fused", "chain"])
    parser.add_argument("--gil", action="store_true", help="sample only while holding the GIL (CPU, not waits)")
    parser.add_argument("--broker", default="redis", choices=["redis", "rabbitmq"],
                        help="the broker (RabbitMQ: a vhost of our own on this machine's server, deleted after)")
    parser.add_argument("--mains", action="store_true", help="pipeline: profile the pools' main processes instead")
    parser.add_argument("--keep", type=Path, help="copy py-spy's raw stacks into this directory (for flame graphs)")
    args = parser.parse_args(argv)
    log_dir = Path(tempfile.mkdtemp(prefix="sb-profile-"))
    redis_proc, base = start_redis(log_dir)
    sandbox_proc, sandbox_url = start_sandbox(log_dir)
    vhost = RabbitVhost() if args.broker == "rabbitmq" else None
    broker_url = vhost.__enter__().url if vhost is not None else f"{base}/9"
    ctx = BenchContext(args.broker, broker_url, f"{base}/1", sandbox_url, log_dir, False, args.grain)
    try:
        env = ctx.env()
        if args.target == "receiver":
            gunicorn, port = start_gunicorn("webhook_app.wsgi:app", env, log_dir, "gunicorn-profile")
            with gunicorn:
                closed_loop(port, trunk_down_requests(env, 200), concurrency=16)
                requests_ = trunk_down_requests(env, int(args.seconds * 1500))
                spies = _spy(gunicorn.children(), args.seconds, log_dir, args.gil)
                started = time.time()
                while time.time() - started < args.seconds:
                    closed_loop(port, requests_[:2000], concurrency=16)
                    requests_ = requests_[2000:] or trunk_down_requests(env, 2000)
                for spy in spies:
                    spy.wait(timeout=60)
        else:
            ctx.reset_sandbox()
            n = int(args.seconds * 400)
            prefill(ctx, env, n)
            with start_worker("ingest", env, log_dir, "profile-ingest") as ingest, \
                    start_worker(DISPATCH, env, log_dir, "profile-dispatch") as dispatch:
                pids = [ingest.proc.pid, dispatch.proc.pid] if args.mains else ingest.children() + dispatch.children()
                spies = _spy(pids, args.seconds, log_dir, args.gil)
                for spy in spies:
                    spy.wait(timeout=args.seconds + 60)
        raw = sorted(log_dir.glob("[0-9]*.txt"))
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for path in raw:
                shutil.copy(path, args.keep / path.name)
        print(summarize(raw))
    finally:
        if vhost is not None:
            vhost.__exit__(None, None, None)
        sandbox_proc.stop()
        redis_proc.stop()
        shutil.rmtree(log_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
