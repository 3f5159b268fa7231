"""Vendor sandbox: real HTTP servers that emulate downstream vendors (PagerDuty Events v2, Genesys Cloud,
NICE CXone, the ZTP orchestrator, the CRM, Slack webhooks, Twilio SMS) for the tests and the demo. They
validate requests against the vendors' contracts, check credentials, rate-limit, inject faults and record
what they received. Start one with ``SandboxServer`` or ``python -m vendor_sandbox --port 8900``."""

from .common import SandboxState
from .server import SandboxServer, create_app, main

__all__ = ["SandboxServer", "SandboxState", "create_app", "main"]
