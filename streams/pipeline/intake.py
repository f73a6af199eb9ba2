"""What the intake agent checks on one events-topic message, without Faust.

Every failure, whatever raised it, comes out as an InvalidEventError with a reason, so
the agent dead-letters the message and goes on with the rest of its batch.
"""

from __future__ import annotations

import datetime as dt

from models.errors import FieldProblem, InvalidEventError
from models.events import Event, check_not_future, parse_event_bytes
from models.ledger import check_currency
from models.policy import MetricPolicy

TOMBSTONE = "empty message value (tombstone)"
TOO_DEEP = "not valid JSON: nested too deeply"


def check_message(
    value: bytes | None, policy: MetricPolicy, now: dt.datetime, max_future: dt.timedelta
) -> Event:
    """The validated event in ``value``, or InvalidEventError naming what is wrong."""
    if value is None:
        raise InvalidEventError([FieldProblem("<body>", TOMBSTONE)])
    try:
        event = parse_event_bytes(value)
    except RecursionError:
        raise InvalidEventError([FieldProblem("<body>", TOO_DEEP)]) from None
    check_currency(event, policy)
    check_not_future(event, now, max_future)
    return event


def reject_reason(error: Exception) -> str:
    """The ``reason`` label of revpulse_events_rejected_total for a failed message."""
    if not isinstance(error, InvalidEventError):
        return "internal"
    return "decode" if error.problems[0].field == "<body>" else "validation"


def reason_text(error: Exception) -> str:
    """The reason a failure is dead-lettered or reported for: an InvalidEventError's own
    words, anything else with its type."""
    if isinstance(error, InvalidEventError):
        return str(error)
    return f"{type(error).__name__}: {error}"
