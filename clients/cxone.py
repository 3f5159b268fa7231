"""NICE CXone client: OAuth password grant with the app's access key, and an outbound dial request.

CXone has no single public dial contract (CONTRACTS.md), so the path and the body template are
configuration; the default is the ``queuecallback`` form ``{skill, phoneNumber, callDelay}``.
"""

from __future__ import annotations

from typing import Any

from clients.auth_session import authed_call
from clients.oauth import Token, TokenManager, request_token

DEFAULT_DIAL_PATH = "/incontactapi/services/v33.0/queuecallback"


def fetch_cxone_token(auth_url: str, client_id: str, client_secret: str, access_key_id: str,
                      access_key_secret: str, timeout: tuple[float, float]) -> Token:
    """``POST /auth/token``, password grant with the access key; CredentialError if refused."""
    return request_token("cxone", auth_url.rstrip("/") + "/auth/token", auth=(client_id, client_secret),
                         form={"grant_type": "password", "username": access_key_id, "password": access_key_secret},
                         timeout=timeout, default_expires_in=3600)


class CXoneClient:
    def __init__(self, api_url: str, tokens: TokenManager, *, dial_path: str = DEFAULT_DIAL_PATH,
                 connect_s: float = 3.05, read_s: float = 10.0) -> None:
        self.api_url = api_url.rstrip("/")
        self.tokens = tokens
        self.dial_path = dial_path
        self.timeout = (connect_s, read_s)

    def dial(self, body: dict[str, Any]) -> dict[str, Any]:
        """Request an outbound call; CXone answers 202 ``{contactId}``."""
        response = authed_call(self.tokens, "POST", self.api_url + self.dial_path, timeout=self.timeout, json=body)
        try:
            return response.json()
        except ValueError:
            return {}
