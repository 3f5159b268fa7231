"""CRM client: customer lookup (phone, time zone, do-not-disturb) with a 2 s timeout (CONTRACTS.md)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from clients.http import VendorError, call


class CRMClient:
    def __init__(self, base_url: str, token: str, *, connect_s: float = 1.0, read_s: float = 2.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = (connect_s, read_s)

    def customer(self, customer_id: str) -> dict[str, Any] | None:
        """The customer record, or None if the CRM does not know the id (404)."""
        try:
            response = call("GET", f"{self.base_url}/api/v1/customers/{quote(customer_id, safe='')}",
                            timeout=self.timeout, headers={"Authorization": f"Bearer {self.token}"})
        except VendorError as exc:
            if exc.status == 404:
                return None
            raise
        return response.json()
