"""The whole service as an operator runs it: ``switchboard demo`` starts the Procfile (gunicorn, a worker
per queue, beat, Flower, embedded Valkey, sandbox), posts every sample and checks each outcome, and
queries Flower's HTTP API for the workers and an event's tasks."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT


@pytest.mark.slow
def test_make_demo_passes() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWITCHBOARD_", "PORT", "FLOWER_", "SANDBOX_"))}
    result = subprocess.run([sys.executable, "-m", "switchboard.cli", "demo"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=240)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr + (ROOT / "var" / "demo-up.log").read_text()[-4000:]
    assert "demo passed" in out
    assert "Flower lists workers ['bulk@" in out and "and 6 task kinds" in out
    assert out.count(" OK") == 11  # nine samples + two duplicate re-posts
