"""Thread-safe in-memory record of the requests the vendor emulators received and what they answered."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Mapping
from typing import Any


class Recorder:
    """Keeps every request as ``{vendor, path, method, headers, json, form, status, at, peer}`` in arrival order.
    ``json`` is the parsed JSON body, ``form`` the form-encoded fields (``application/x-www-form-urlencoded``
    bodies, e.g. OAuth token requests and Twilio messages); each is None when the body is not of that kind.
    ``peer`` is the client's ``address:port``: requests with the same one came over one connection."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []

    def record(
        self,
        *,
        vendor: str,
        path: str,
        method: str,
        headers: Mapping[str, str],
        json_body: Any,
        status: int,
        form_body: Mapping[str, Any] | None = None,
        arrived_at: float | None = None,
        peer: str | None = None,
    ) -> None:
        """Store one request; header names are lower-cased, ``json_body`` is the parsed body or None,
        ``form_body`` the form fields or None. ``at`` is when the request arrived (if known), so rate
        checks see arrival times, not how long the emulator took to answer."""
        entry = {
            "vendor": vendor,
            "path": path,
            "method": method.upper(),
            "headers": {name.lower(): value for name, value in headers.items()},
            "json": copy.deepcopy(json_body),
            "form": copy.deepcopy(dict(form_body)) if form_body is not None else None,
            "status": int(status),
            "at": arrived_at if arrived_at is not None else time.time(),
            "peer": peer,
        }
        with self._lock:
            self._entries.append(entry)

    def entries(
        self, vendor: str | None = None, path: str | None = None, *, include_rejected: bool = False
    ) -> list[dict[str, Any]]:
        """Copies of the matching entries; only accepted (2xx) ones unless ``include_rejected``."""
        with self._lock:
            selected = [
                entry
                for entry in self._entries
                if (vendor is None or entry["vendor"] == vendor)
                and (path is None or entry["path"] == path)
                and (include_rejected or 200 <= entry["status"] < 300)
            ]
            return copy.deepcopy(selected)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
