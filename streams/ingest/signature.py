"""Request signatures for the ingestion API (docs/ingestion.md, "Signed requests").

Pure: time is passed in.

A sender computes ``hex(HMAC-SHA256(secret, f"{timestamp}." + body))`` over the exact
body bytes and sends::

    X-Revpulse-Timestamp: 1767225600            (Unix seconds)
    X-Revpulse-Signature: v1=5d41402abc4b2a76...  (several allowed, comma separated)
    X-Revpulse-Source:    hubspot               (optional: selects that source's secrets)

The receiver accepts the request when the timestamp is within the tolerance of its own
clock and one of the signatures matches one of the valid secrets (two or more during a
rotation), compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Literal

from models.errors import RevpulseError

TIMESTAMP_HEADER = "X-Revpulse-Timestamp"
SIGNATURE_HEADER = "X-Revpulse-Signature"
SOURCE_HEADER = "X-Revpulse-Source"
SCHEME = "v1"
MAX_SIGNATURES = 8

RejectReason = Literal["unsigned", "bad_timestamp", "stale_timestamp", "bad_signature"]


class SignatureError(RevpulseError):
    """A request is not signed, or not signed right. Answered with 401; never names a secret."""

    def __init__(self, reason: RejectReason, message: str) -> None:
        self.reason = reason
        self.message = message
        super().__init__(message)


def signed_payload(timestamp: int, body: bytes) -> bytes:
    return f"{timestamp}.".encode() + body


def sign(secret: bytes | str, timestamp: int, body: bytes | str) -> str:
    """The signature header value for ``body`` sent at ``timestamp``: ``v1=<hex>``.

    A ``str`` secret or body is taken as its UTF-8 bytes."""
    key = secret.encode() if isinstance(secret, str) else secret
    data = body.encode() if isinstance(body, str) else body
    digest = hmac.new(key, signed_payload(timestamp, data), hashlib.sha256).hexdigest()
    return f"{SCHEME}={digest}"


def signature_headers(
    secret: bytes | str, timestamp: int, body: bytes | str, source: str | None = None
) -> dict[str, str]:
    """The headers a sender adds to a request (the CRM side of the scheme)."""
    headers = {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(secret, timestamp, body)}
    if source is not None:
        headers[SOURCE_HEADER] = source
    return headers


def _parse_timestamp(value: str | None) -> int:
    if value is None or not value.strip():
        raise SignatureError("unsigned", f"missing {TIMESTAMP_HEADER} header (Unix seconds)")
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        raise SignatureError(
            "bad_timestamp", f"{TIMESTAMP_HEADER} must be an integer number of Unix seconds"
        )
    return int(text)


def _candidate_digests(value: str | None) -> list[str]:
    if value is None or not value.strip():
        raise SignatureError("unsigned", f"missing {SIGNATURE_HEADER} header ({SCHEME}=<hex>)")
    digests = []
    for part in value.split(",")[:MAX_SIGNATURES]:
        scheme, _, digest = part.strip().partition("=")
        if scheme == SCHEME and digest:
            digests.append(digest.strip().lower())
    if not digests:
        raise SignatureError(
            "bad_signature", f"{SIGNATURE_HEADER} holds no {SCHEME}=<hex> signature"
        )
    return digests


def verify(
    secrets: Sequence[bytes],
    timestamp_header: str | None,
    signature_header: str | None,
    body: bytes,
    *,
    now_seconds: float,
    tolerance_seconds: float,
) -> None:
    """Return if the request is signed with one of ``secrets``; else raise SignatureError."""
    timestamp = _parse_timestamp(timestamp_header)
    digests = _candidate_digests(signature_header)
    skew = now_seconds - timestamp
    if abs(skew) > tolerance_seconds:
        direction = "old" if skew > 0 else "in the future"
        raise SignatureError(
            "stale_timestamp",
            f"{TIMESTAMP_HEADER} is {abs(int(skew))} s {direction}; "
            f"the tolerance is {int(tolerance_seconds)} s",
        )
    payload = signed_payload(timestamp, body)
    matched = False
    for secret in secrets:
        expected = hmac.new(secret, payload, hashlib.sha256).hexdigest().encode()
        for digest in digests:
            # no early exit: every pair is compared, each in constant time
            matched |= hmac.compare_digest(expected, digest.encode("ascii", "replace"))
    if not matched:
        raise SignatureError(
            "bad_signature",
            "signature does not match: sign f'{timestamp}.{body}' with HMAC-SHA256 "
            "and the shared secret",
        )
