"""HMAC request signatures: pure, time passed in."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from streams.ingest.signature import (
    SIGNATURE_HEADER,
    SOURCE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    sign,
    signature_headers,
    verify,
)

SECRET = b"s3cret-s3cret-s3cret"
OLD_SECRET = b"old-secret-old-secret"
BODY = b'{"event_id":"e1"}'
NOW = 1_767_225_600


def check(
    timestamp: str | None,
    signature: str | None,
    *,
    secrets: tuple[bytes, ...] = (SECRET,),
    body: bytes = BODY,
    now: float = NOW,
    tolerance: float = 300,
) -> None:
    verify(secrets, timestamp, signature, body, now_seconds=now, tolerance_seconds=tolerance)


def test_sign_is_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET, f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, NOW, BODY) == f"v1={expected}"


def test_headers_carry_timestamp_signature_and_source() -> None:
    headers = signature_headers(SECRET, NOW, BODY, "hubspot")
    assert headers == {
        TIMESTAMP_HEADER: str(NOW),
        SIGNATURE_HEADER: sign(SECRET, NOW, BODY),
        SOURCE_HEADER: "hubspot",
    }
    assert SOURCE_HEADER not in signature_headers(SECRET, NOW, BODY)


def test_str_secret_and_body_sign_as_their_utf8_bytes() -> None:
    assert sign(SECRET.decode(), NOW, BODY.decode()) == sign(SECRET, NOW, BODY)
    headers = signature_headers(SECRET.decode(), NOW, BODY)
    check(headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER])


def test_a_correct_signature_passes() -> None:
    check(str(NOW), sign(SECRET, NOW, BODY))


@pytest.mark.parametrize(
    ("now", "passes"),
    [
        (NOW + 300, True),
        (NOW - 300, True),
        (NOW + 301, False),  # replayed later than the tolerance
        (NOW - 301, False),  # from the future
    ],
)
def test_timestamp_tolerance(now: float, passes: bool) -> None:
    if passes:
        check(str(NOW), sign(SECRET, NOW, BODY), now=now)
    else:
        with pytest.raises(SignatureError) as raised:
            check(str(NOW), sign(SECRET, NOW, BODY), now=now)
        assert raised.value.reason == "stale_timestamp"
        assert "tolerance is 300 s" in raised.value.message


@pytest.mark.parametrize(
    ("timestamp", "signature", "reason"),
    [
        (None, "v1=00", "unsigned"),
        ("", "v1=00", "unsigned"),
        (str(NOW), None, "unsigned"),
        (str(NOW), "  ", "unsigned"),
        ("yesterday", "v1=00", "bad_timestamp"),
        ("-5", "v1=00", "bad_timestamp"),
        ("1e9", "v1=00", "bad_timestamp"),
        ("٣٣", "v1=00", "bad_timestamp"),  # non-ASCII digits
        (str(NOW), "v0=abc", "bad_signature"),
        (str(NOW), "v1=", "bad_signature"),
        (str(NOW), "v1=" + "0" * 64, "bad_signature"),
        (str(NOW), "v1=ünïcode", "bad_signature"),
    ],
)
def test_rejections_say_why(timestamp: str | None, signature: str | None, reason: str) -> None:
    with pytest.raises(SignatureError) as raised:
        check(timestamp, signature)
    assert raised.value.reason == reason


def test_the_body_and_timestamp_are_both_signed() -> None:
    signature = sign(SECRET, NOW, BODY)
    with pytest.raises(SignatureError):
        check(str(NOW), signature, body=BODY + b" ")
    with pytest.raises(SignatureError):
        check(str(NOW + 1), signature)


def test_rotation_two_secrets_valid_at_once() -> None:
    for secret in (SECRET, OLD_SECRET):
        check(str(NOW), sign(secret, NOW, BODY), secrets=(SECRET, OLD_SECRET))
    with pytest.raises(SignatureError):
        check(str(NOW), sign(OLD_SECRET, NOW, BODY), secrets=(SECRET,))


def test_several_signatures_in_one_header() -> None:
    both = f"{sign(b'unknown-unknown', NOW, BODY)}, {sign(SECRET, NOW, BODY)}"
    check(str(NOW), both)
    # hex case does not matter
    check(str(NOW), "v1=" + sign(SECRET, NOW, BODY)[3:].upper())


def test_no_secret_means_nothing_verifies() -> None:
    with pytest.raises(SignatureError):
        check(str(NOW), sign(SECRET, NOW, BODY), secrets=())


def test_errors_never_echo_a_secret() -> None:
    with pytest.raises(SignatureError) as raised:
        check(str(NOW), sign(b"wrong-wrong-wrong", NOW, BODY))
    assert SECRET.decode() not in str(raised.value)
    assert sign(SECRET, NOW, BODY) not in str(raised.value)
