"""Webhook signature verification (pure): HMAC-SHA256 headers and the Standard Webhooks scheme.

Written by hand on purpose: the ``standardwebhooks`` package's ``Webhook.verify`` raises uncaught
errors on invalid UTF-8 bodies and malformed signature entries, fixes the tolerance at 5 minutes and
reads the wall clock itself, and takes one secret; the receiver needs a precise 401 for every malformed
input, several active secrets (rotation) and an injectable clock. The tests sign with that package, so
interoperability is checked against the reference implementation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence


class SignatureError(Exception):
    """The request's signature does not prove it came from the source (answered 401)."""


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def matches_any(given: bytes, candidates: Sequence[bytes]) -> bool:
    """Whether ``given`` equals one of ``candidates``, in constant time: ``hmac.compare_digest`` against every
    candidate (no early exit), so the time taken tells neither the bytes that matched nor which one did."""
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(candidate, given)
    return matched


def _decode(value: str, encoding: str) -> bytes:
    try:
        if encoding == "hex":
            return bytes.fromhex(value)
        return base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise SignatureError(f"signature is not valid {encoding}") from exc


def verify_hmac_header(
    body: bytes,
    header_value: str | None,
    secrets: Sequence[str],
    *,
    encoding: str = "hex",
    prefix: str = "",
) -> None:
    """Check ``header_value`` = prefix + encoded HMAC-SHA256(secret, body) for any active secret."""
    if not header_value:
        raise SignatureError("signature header missing")
    if not secrets:
        raise SignatureError("no secret configured for this source")
    value = header_value.strip()
    if "," in value or " " in value:
        raise SignatureError("signature header must hold exactly one value")
    if prefix:
        if not value.startswith(prefix):
            raise SignatureError(f"signature must start with {prefix!r}")
        value = value[len(prefix):]
    given = _decode(value, encoding)
    if len(given) != hashlib.sha256().digest_size:
        raise SignatureError("signature has the wrong length")
    if not matches_any(given, [_hmac(secret.encode(), body) for secret in secrets]):
        raise SignatureError("signature does not match")


def _standard_webhooks_key(secret: str) -> bytes:
    raw = secret[len("whsec_"):] if secret.startswith("whsec_") else secret
    try:
        return base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (ValueError, binascii.Error) as exc:
        raise SignatureError("configured Standard Webhooks secret is not base64") from exc


def verify_standard_webhooks(
    body: bytes,
    headers: Mapping[str, str],
    secrets: Sequence[str],
    *,
    now: float,
    tolerance_s: int = 300,
) -> str:
    """Verify a Standard Webhooks message; return its ``webhook-id``.

    ``headers`` must be keyed by lower-case names. Signed content is ``{id}.{timestamp}.{body}``.
    """
    msg_id = headers.get("webhook-id", "").strip()
    timestamp = headers.get("webhook-timestamp", "").strip()
    signature_header = headers.get("webhook-signature", "").strip()
    if not (msg_id and timestamp and signature_header):
        raise SignatureError("webhook-id, webhook-timestamp and webhook-signature are required")
    if not secrets:
        raise SignatureError("no secret configured for this source")
    # isdigit() alone accepts "²" and other Unicode digits; a huge number would overflow the float maths
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise SignatureError("webhook-timestamp must be Unix seconds")
    if abs(now - int(timestamp)) > tolerance_s:
        raise SignatureError("webhook-timestamp outside the tolerance")
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = [_hmac(_standard_webhooks_key(s), signed) for s in secrets]
    matched = False
    for entry in signature_header.split(" "):
        version, _, encoded = entry.partition(",")
        if version != "v1" or not encoded:
            continue
        try:
            given = base64.b64decode(encoded, validate=True)
        except (ValueError, binascii.Error):
            continue
        matched |= matches_any(given, expected)
    if not matched:
        raise SignatureError("no matching v1 signature")
    return msg_id


def sign_hmac(body: bytes, secret: str, *, encoding: str = "hex", prefix: str = "") -> str:
    """The header value a source would send (used by ``switchboard send`` and the demo)."""
    digest = _hmac(secret.encode(), body)
    encoded = digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()
    return prefix + encoded


def sign_standard_webhooks(body: bytes, secret: str, msg_id: str, timestamp: int) -> dict[str, str]:
    """Headers of a signed Standard Webhooks message (used by ``switchboard send`` and the demo)."""
    signed = msg_id.encode() + b"." + str(timestamp).encode() + b"." + body
    signature = base64.b64encode(_hmac(_standard_webhooks_key(secret), signed)).decode()
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": f"v1,{signature}"}
