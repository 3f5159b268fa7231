"""The receiver as production runs it: the Procfile's ``web`` command (gunicorn, its worker class, workers and
timeouts), on a free loopback port, its stderr (gunicorn's log and the app's JSON log lines) in a file.

The command line is read from the Procfile, so a test of slow clients or of log redaction runs what ``make up``
runs; only the port, the control socket (one per instance, so parallel runs do not share gunicorn's default
``~/.gunicorn/gunicorn.ctl``) and the environment differ.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import requests

from switchboard.runner import free_port
from switchboard.waiting import wait_for
from tests.helpers import ROOT, stop_process

_DEFAULT = re.compile(r"\$\{(\w+):-([^}]*)\}")


def procfile_web_args(env: dict[str, str], port: int) -> list[str]:
    """gunicorn's arguments in the Procfile's ``web`` line, ``${NAME:-default}`` filled from ``env``."""
    line = next(x for x in (ROOT / "Procfile").read_text().splitlines() if x.startswith("web:"))
    words = shlex.split(_DEFAULT.sub(lambda m: env.get(m.group(1), m.group(2)), line.split(":", 1)[1]))
    args = words[words.index("gunicorn") + 1:]
    bind = args.index("--bind")
    args[bind + 1] = f"127.0.0.1:{port}"
    return args


class GunicornReceiver:
    def __init__(self, env: dict[str, str], directory: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = directory / f"gunicorn-{self.port}.log"
        metrics = directory / f"metrics-{self.port}"
        metrics.mkdir(parents=True, exist_ok=True)
        self.env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics)}
        self.cmd = [sys.executable, "-m", "gunicorn", *procfile_web_args(self.env, self.port),
                    "--control-socket", str(directory / f"gunicorn-{self.port}.ctl")]

    def __enter__(self) -> GunicornReceiver:
        self.log = self.log_path.open("a")
        self.proc = subprocess.Popen(self.cmd, env=self.env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: self.proc.poll() is not None or requests.get(f"{self.url}/healthz", timeout=2).ok, 30, 0.1,
                 "gunicorn answering /healthz")
        if self.proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {self.log_path.read_text()[-3000:]}")
        return self

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def __exit__(self, *exc: object) -> None:
        stop_process(self.proc)
        self.log.close()
