"""Every test under tests/reliability/ carries the ``reliability`` marker (``pytest -m reliability``), and
the fault scenarios share one vendor sandbox of their own (their faults and counts never touch the
session sandbox the rest of the suite reads)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from vendor_sandbox.server import SandboxServer

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.reliability)


@pytest.fixture(scope="module")
def fault_sandbox() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server
