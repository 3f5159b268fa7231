"""Where the CPU goes during a drain: CPU time per process role (pool main process, pool children, Redis,
RabbitMQ, the null vendor, the bench itself), read from ``/proc/<pid>/stat`` before and after.

A ratio says how fast the pipeline is against Celery's own cost; this says why: the no-op drain and the
pipeline drain are split the same way, so the per-event work beyond two Celery tasks is visible by role.
Hand-written because it is twenty lines of /proc parsing (psutil would be a dependency for this alone).
"""

from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
Snapshot = dict[int, tuple[str, int, float]]  # pid -> (command line, parent pid, CPU seconds so far)


def _read(pid: int) -> tuple[str, int, float] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:  # gone between the listing and the read
        return None
    fields = stat.rpartition(")")[2].split()  # after "(comm)", which may hold spaces
    return cmdline, int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def snapshot() -> Snapshot:
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (read := _read(int(entry.name))) is not None:
            out[int(entry.name)] = read
    return out


def role_of(pid: int, cmdline: str, ppid: int, pools: dict[str, int]) -> str:
    """``pools``: role name -> the pool's main process id."""
    for name, main in pools.items():
        if pid == main:
            return f"{name} pool main"
        if ppid == main:
            return f"{name} pool children"
    if pid == os.getpid():
        return "bench driver"
    if "redis-server" in cmdline:
        return "redis"
    if "beam.smp" in cmdline:
        return "rabbitmq"
    if "vendor_sandbox" in cmdline:
        return "null vendor (sandbox)"
    return "other"


def cpu_ms_per_item(before: Snapshot, after: Snapshot, pools: dict[str, int], items: int) -> dict[str, float]:
    """CPU milliseconds per drained item by role, and their ``total``; roles under 0.005 ms are left out."""
    spent: dict[str, float] = {}
    for pid, (cmdline, ppid, cpu) in after.items():
        start = before.get(pid)
        used = cpu - (start[2] if start is not None and start[0] == cmdline else 0.0)
        role = role_of(pid, cmdline, ppid, pools)
        spent[role] = spent.get(role, 0.0) + used
    out = {role: round(1000 * s / items, 3) for role, s in sorted(spent.items()) if 1000 * s / items >= 0.005}
    out["total"] = round(sum(v for k, v in out.items()), 3)
    return out
