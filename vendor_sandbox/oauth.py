"""OAuth state shared by the emulators whose APIs need a bearer token (Genesys Cloud, NICE CXone).

Per vendor: the accepted client credentials (and CXone's access key), the token lifetime, counters of token
requests, the issued tokens with their expiry on the monotonic clock, revocation, and "fail the next N token
requests". The vendors' token endpoints use ``OAuthRegistry`` and ``counted_token_endpoint``; their API
endpoints call ``require_bearer``. Control API (this module's blueprint, under ``/_sandbox/oauth``):

- ``GET /_sandbox/oauth/<vendor>``: ``{token_requests, tokens_issued, failed_requests, active_tokens,
  expires_in, fail_pending, client_id}``
- ``PUT /_sandbox/oauth/<vendor>``: ``{expires_in?, client_id?, client_secret?, access_key_id?,
  access_key_secret?, fail?}`` (``fail: N``: the next N token requests answer 401 invalid_client)
- ``POST /_sandbox/oauth/<vendor>/revoke``: revoke every issued token (the next API call answers 401)

``DELETE /_sandbox/requests`` restores the defaults and forgets tokens and counters."""

from __future__ import annotations

import functools
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, jsonify, request

from .common import SandboxState, answer, basic_credentials, bearer_token, get_state, injected_fault, throttled

STORE = "oauth"
MAX_EXPIRES_IN = 10_000_000
MAX_FAIL = 100_000
CREDENTIAL_FIELDS = ("client_id", "client_secret", "access_key_id", "access_key_secret")

blueprint = Blueprint("sandbox_oauth", __name__, url_prefix="/_sandbox/oauth")


@dataclass(frozen=True)
class OAuthDefaults:
    """A vendor's defaults: accepted credentials, token lifetime, the API's 401 body for a bad token."""

    vendor: str
    client_id: str
    client_secret: str
    expires_in: int
    unauthorized_body: Mapping[str, Any]
    access_key_id: str | None = None
    access_key_secret: str | None = None


@dataclass
class Token:
    """One issued token: the client it was issued to, when it expires (monotonic seconds), revoked or not."""

    client_id: str
    expires_at: float
    revoked: bool = False


@dataclass
class _VendorOAuth:
    defaults: OAuthDefaults
    credentials: dict[str, str | None] = field(default_factory=dict)
    expires_in: int = 0
    token_requests: int = 0
    tokens_issued: int = 0
    failed_requests: int = 0
    fail_next: int = 0
    tokens: dict[str, Token] = field(default_factory=dict)

    @classmethod
    def fresh(cls, defaults: OAuthDefaults) -> _VendorOAuth:
        credentials = {name: getattr(defaults, name) for name in CREDENTIAL_FIELDS}
        return cls(defaults=defaults, credentials=credentials, expires_in=defaults.expires_in)


def _same(given: str | None, expected: str | None) -> bool:
    if given is None or expected is None:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


class OAuthRegistry:
    """Thread-safe OAuth state of every registered vendor; ``clear`` restores each vendor's defaults."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._vendors: dict[str, _VendorOAuth] = {}

    def register(self, defaults: OAuthDefaults) -> None:
        with self._lock:
            self._vendors.setdefault(defaults.vendor, _VendorOAuth.fresh(defaults))

    def defaults(self, vendor: str) -> OAuthDefaults:
        with self._lock:
            return self._get(vendor).defaults

    def _get(self, vendor: str) -> _VendorOAuth:
        try:
            return self._vendors[vendor]
        except KeyError:
            raise KeyError(f"no OAuth vendor {vendor!r}; known: {', '.join(sorted(self._vendors))}") from None

    def client_ok(self, vendor: str, client_id: str, client_secret: str) -> bool:
        with self._lock:
            creds = self._get(vendor).credentials
            return _same(client_id, creds["client_id"]) & _same(client_secret, creds["client_secret"])

    def access_key_ok(self, vendor: str, key_id: str | None, key_secret: str | None) -> bool:
        with self._lock:
            creds = self._get(vendor).credentials
            return _same(key_id, creds["access_key_id"]) & _same(key_secret, creds["access_key_secret"])

    def take_failure(self, vendor: str) -> bool:
        """True (and one fewer pending) if a ``fail: N`` is pending: answer this token request 401."""
        with self._lock:
            state = self._get(vendor)
            if state.fail_next <= 0:
                return False
            state.fail_next -= 1
            return True

    def issue(self, vendor: str, client_id: str) -> tuple[str, int]:
        """A new token for ``client_id`` and its lifetime in seconds."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            state = self._get(vendor)
            state.tokens[token] = Token(client_id, self._clock() + state.expires_in)
            return token, state.expires_in

    def count(self, vendor: str, *, issued: bool) -> None:
        with self._lock:
            state = self._get(vendor)
            state.token_requests += 1
            if issued:
                state.tokens_issued += 1
            else:
                state.failed_requests += 1

    def check(self, vendor: str, token: str | None) -> Token | None:
        """The token if it was issued by ``vendor`` and is neither expired nor revoked, else None."""
        if token is None:
            return None
        with self._lock:
            found = self._get(vendor).tokens.get(token)
            if found is None or found.revoked or self._clock() >= found.expires_at:
                return None
            return Token(found.client_id, found.expires_at, found.revoked)

    def revoke_all(self, vendor: str) -> int:
        """Revoke every token of ``vendor``; returns how many were still active."""
        with self._lock:
            state = self._get(vendor)
            now = self._clock()
            active = sum(1 for t in state.tokens.values() if not t.revoked and now < t.expires_at)
            for token in state.tokens.values():
                token.revoked = True
            return active

    def describe(self, vendor: str) -> dict[str, Any]:
        with self._lock:
            state = self._get(vendor)
            now = self._clock()
            return {
                "vendor": vendor,
                "token_requests": state.token_requests,
                "tokens_issued": state.tokens_issued,
                "failed_requests": state.failed_requests,
                "active_tokens": sum(1 for t in state.tokens.values() if not t.revoked and now < t.expires_at),
                "expires_in": state.expires_in,
                "fail_pending": state.fail_next,
                "client_id": state.credentials["client_id"],
            }

    def configure(self, vendor: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Apply ``{expires_in, fail, client_id, client_secret, access_key_id, access_key_secret}`` (any
        subset); ValueError if invalid (nothing changes then), KeyError for an unknown vendor."""
        with self._lock:
            state = self._get(vendor)
            allowed = {"expires_in", "fail", "client_id", "client_secret"}
            if state.defaults.access_key_id is not None:
                allowed |= {"access_key_id", "access_key_secret"}
            unknown = sorted(set(spec) - allowed)
            if unknown:
                raise ValueError(f"unknown field(s) for {vendor}: {', '.join(unknown)}; allowed: {sorted(allowed)}")
            expires_in = _int(spec, "expires_in", state.expires_in, MAX_EXPIRES_IN)
            fail = _int(spec, "fail", state.fail_next, MAX_FAIL)
            credentials = dict(state.credentials)
            for name in CREDENTIAL_FIELDS:
                if name in spec:
                    value = spec[name]
                    if not isinstance(value, str) or not value:
                        raise ValueError(f"{name} must be a non-empty string")
                    credentials[name] = value
            state.expires_in, state.fail_next, state.credentials = expires_in, fail, credentials
        return self.describe(vendor)

    def clear(self) -> None:
        with self._lock:
            for vendor, state in self._vendors.items():
                self._vendors[vendor] = _VendorOAuth.fresh(state.defaults)


def _int(spec: Mapping[str, Any], key: str, default: int, high: int) -> int:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise ValueError(f"{key} must be an integer between 0 and {high}, got {value!r}")
    return value


def init_state(state: SandboxState) -> None:
    """Give a fresh sandbox state its (empty) OAuth registry."""
    state.stores.setdefault(STORE, OAuthRegistry())


def registry(state: SandboxState | None = None) -> OAuthRegistry:
    """The OAuth registry of ``state`` (default: the current app's), created on first use."""
    store = (state or get_state()).stores.setdefault(STORE, OAuthRegistry())
    assert isinstance(store, OAuthRegistry)
    return store


def register(state: SandboxState, defaults: OAuthDefaults) -> None:
    """Register a vendor's OAuth defaults on ``state`` (from the vendor's ``init_state``)."""
    registry(state).register(defaults)


def require_bearer(vendor: str, json_body: Any = None) -> tuple[Token, None] | tuple[None, Response]:
    """The current request's valid token, or the recorded 401 (the vendor's body) to send instead when the
    ``Authorization: Bearer`` token is missing, unknown, expired or revoked."""
    token = registry().check(vendor, bearer_token())
    if token is not None:
        return token, None
    body = dict(registry().defaults(vendor).unauthorized_body)
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    return None, answer(vendor, 401, body, json_body=json_body, headers=headers)


def counted_token_endpoint(vendor: str) -> Callable[[Callable[[], Response]], Callable[[], Response]]:
    """Decorate a token view: count each request, as issued when it answered 2xx, else as failed."""

    def decorate(view: Callable[[], Response]) -> Callable[[], Response]:
        @functools.wraps(view)
        def counted() -> Response:
            response = view()
            registry().count(vendor, issued=200 <= response.status_code < 300)
            return response

        return counted

    return decorate


def _control(vendor: str, action: Callable[[OAuthRegistry], Any]) -> Response | tuple[Response, int]:
    try:
        return jsonify(action(registry()))
    except KeyError as exc:
        return jsonify({"error": exc.args[0]}), 404
    except ValueError as exc:
        return jsonify({"error": str(exc)}), 400


@blueprint.get("/<vendor>")
def describe(vendor: str) -> Response | tuple[Response, int]:
    return _control(vendor, lambda reg: reg.describe(vendor))


@blueprint.put("/<vendor>")
def configure(vendor: str) -> Response | tuple[Response, int]:
    spec = request.get_json(silent=True)
    if not isinstance(spec, dict):
        return jsonify({"error": "body must be a JSON object"}), 400
    return _control(vendor, lambda reg: reg.configure(vendor, spec))


@blueprint.post("/<vendor>/revoke")
def revoke(vendor: str) -> Response | tuple[Response, int]:
    return _control(vendor, lambda reg: {"revoked": reg.revoke_all(vendor), **reg.describe(vendor)})


def token_request_start(vendor: str, namespace: str, fault_body: Callable[[int], Any],
                        throttle_body: Callable[[int], Any]) -> tuple[tuple[str, str] | None, Response | None]:
    """What every token endpoint does first: injected faults, then the per-client token rate limit.

    Returns the Basic credentials (None if absent) and, when the request ends here, the answer to send."""
    fault = injected_fault(vendor, namespace=namespace, fault_body=fault_body)
    if fault is not None:
        return None, fault
    credentials = basic_credentials()
    client_key = credentials[0] if credentials else f"anonymous@{request.remote_addr}"
    return credentials, throttled(vendor, client_key, None, throttle_body, namespace=namespace)
