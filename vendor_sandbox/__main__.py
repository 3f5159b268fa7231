"""Entry point for ``python -m vendor_sandbox --port 8900``: serve the sandbox in the foreground."""

from .server import main

raise SystemExit(main())
