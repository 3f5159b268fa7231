"""RabbitMQ only: the policy that puts Switchboard's queues on classic queue version 2, and applying it.

RabbitMQ 3.10-3.12 keep a classic queue's index and store at version 1 unless told otherwise; version 2 (the
default from 3.13, the only one from 4.0) spends less broker CPU per persistent, publisher-confirmed message,
which is every webhook the receiver accepts (measured on this machine's RabbitMQ 3.10: README, Performance).
It is a policy, not an ``x-queue-version`` argument on our ``Queue`` declarations: a queue's arguments must
match every later declaration of it, so the argument would make each existing deployment's queues, and any
worker still running the previous release, fail with PRECONDITION_FAILED (inequivalent arg), while a policy
converts the queues in place, and leaves them where they are on a broker that has no version 1.
Applying is rabbitmqctl's job (the management API is a plugin a broker may not run), on a broker node.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from collections.abc import Iterable, Sequence

POLICY_NAME = "switchboard-queue-version"
DEFINITION = {"queue-version": 2}


def queues_pattern(queues: Iterable[str]) -> str:
    """A regular expression matching exactly these queue names (the policy applies to no one else's queues)."""
    return "^(" + "|".join(re.escape(name) for name in sorted(queues)) + ")$"


def set_policy_args(vhost: str, queues: Iterable[str], priority: int = 0) -> list[str]:
    """``rabbitmqctl`` arguments that set the policy on ``vhost``. A queue takes the one matching policy of the
    highest priority, so where another policy (TTL, length limit) matches our queues, give its definition the
    ``queue-version`` key instead, or this one a higher ``priority`` (its keys then replace the other's)."""
    return ["set_policy", "-p", vhost, "--priority", str(priority), "--apply-to", "queues",
            POLICY_NAME, queues_pattern(queues), json.dumps(DEFINITION, separators=(",", ":"))]


def command_line(args: Sequence[str]) -> str:
    """The shell command an operator can paste on a broker node."""
    return shlex.join(["rabbitmqctl", *args])


def rabbitmqctl(args: Sequence[str], timeout_s: float = 60.0) -> None:
    """Run ``rabbitmqctl -q`` with ``args`` (also the bench's and the tests' vhosts); raises ``RuntimeError`` with
    rabbitmqctl's own words if it fails."""
    try:
        done = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=timeout_s)
    except FileNotFoundError as exc:
        raise RuntimeError("rabbitmqctl not found: run this on a RabbitMQ node, or paste the command there") from exc
    if done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl failed ({done.returncode}): {(done.stderr or done.stdout).strip()}")
