"""What the intake checks on one events-topic message, and the publish health it reports."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from models.errors import InvalidEventError
from models.events import decode_json
from models.policy import MetricPolicy
from streams.pipeline.health import PublishHealth
from streams.pipeline.intake import TOMBSTONE, check_message, reject_reason
from streams.settings import Settings

NOW = dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def _lead(occurred_at: str) -> bytes:
    return json.dumps({
        "event_id": "e1", "type": "lead.created", "occurred_at": occurred_at,
        "data": {"lead_id": "L1", "channel": "web", "origin": "marketing"},
    }).encode()  # fmt: skip


def _problem(value: bytes | None) -> tuple[str, str, str]:
    with pytest.raises(InvalidEventError) as raised:
        check_message(value, MetricPolicy(), NOW, DAY)
    problem = raised.value.problems[0]
    return problem.field, problem.message, reject_reason(raised.value)


def test_a_valid_message_passes() -> None:
    event = check_message(_lead("2026-03-10T08:00:00Z"), MetricPolicy(), NOW, DAY)
    assert event.event_id == "e1"


def test_a_tombstone_is_a_decode_failure_with_a_clear_reason() -> None:
    assert _problem(None) == ("<body>", TOMBSTONE, "decode")
    assert TOMBSTONE == "empty message value (tombstone)"


def test_json_nested_too_deeply_is_a_decode_failure_not_a_recursion_error() -> None:
    field, message, reason = _problem(b"[" * 10_000 + b"]" * 10_000)
    assert (field, reason) == ("<body>", "decode")
    assert "nested too deeply" in message


def test_decode_json_turns_a_recursion_error_into_an_invalid_event() -> None:
    """Every outside-input path (intake, HTTP, replay, dlq resubmit) decodes here."""
    with pytest.raises(InvalidEventError, match="nested too deeply") as raised:
        decode_json("{" + '"a":{' * 10_000 + "}" * 10_001)
    assert raised.value.problems[0].field == "<body>"


@pytest.mark.parametrize(
    ("occurred_at", "ok"),
    [
        ("2026-03-11T09:00:00Z", True),  # exactly the allowed day ahead
        ("2026-03-11T09:00:01Z", False),
        ("3000-01-01T00:00:00Z", False),
        ("9999-12-31T23:59:59-01:00", False),
    ],
)
def test_occurred_at_at_most_the_allowed_time_ahead(occurred_at: str, ok: bool) -> None:
    if ok:
        check_message(_lead(occurred_at), MetricPolicy(), NOW, DAY)
    else:
        field, _message, reason = _problem(_lead(occurred_at))
        assert (field, reason) == ("occurred_at", "validation")


def test_reject_reason_of_an_unforeseen_error() -> None:
    assert reject_reason(RuntimeError("x")) == "internal"


def test_settings_reach_the_policy_and_the_intake() -> None:
    settings = Settings(max_future_seconds=60, max_channels=7, channel_allowlist=["Web", "ads"])
    assert settings.max_future() == dt.timedelta(seconds=60)
    policy = settings.policy()
    assert policy.max_channels == 7
    assert policy.channel_allowlist == frozenset({"web", "ads"})
    defaults = Settings()
    assert (defaults.max_future_seconds, defaults.max_channels) == (86400, 100)
    assert defaults.policy().channel_allowlist == frozenset()


def test_publish_health_says_since_when_and_why() -> None:
    health = PublishHealth()
    assert health.problem() is None
    started = dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC).timestamp()
    health.failed(started, "redis: connection reset")
    health.failed(started + 30, "redis: timeout")
    assert health.problem() == "publish failing since 2026-03-10T09:00:00+00:00: redis: timeout"
    health.succeeded()
    assert health.problem() is None
