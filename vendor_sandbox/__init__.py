"""Vendor sandbox: real HTTP servers that emulate downstream vendors (PagerDuty Events v2 for now) for the
tests and the demo. They validate payloads against the vendors' schemas, rate-limit, inject faults and
record what they received. Start one with ``SandboxServer`` or ``python -m vendor_sandbox --port 8900``."""

from .common import SandboxState
from .server import SandboxServer, create_app, main

__all__ = ["SandboxServer", "SandboxState", "create_app", "main"]
