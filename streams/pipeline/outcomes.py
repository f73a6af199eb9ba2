"""What became of the events of a message: sorted by outcome, then counted and sent on
(dead letters, the late topic). The id gate and the ledger stage both decide outcomes;
this is where a decision turns into metrics and messages, the same for both."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from models.errors import FieldProblem, InvalidEventError
from models.events import Event, parse_canonical_event
from models.ledger import Outcome
from models.policy import MetricPolicy
from sinks.ops_metrics import OpsMetrics
from streams.pipeline.ports import Topic

log = logging.getLogger(__name__)


@dataclass
class BatchResult:
    accepted: list[bytes] = field(default_factory=list)
    duplicates: list[Event] = field(default_factory=list)
    late: list[tuple[bytes, Event]] = field(default_factory=list)
    # events the ledger cannot hold, for any reason: dead-lettered with the error
    invalid: list[tuple[bytes, InvalidEventError]] = field(default_factory=list)
    # an event_id applied before with other content: the first applied version counts
    conflicts: list[tuple[bytes, Event]] = field(default_factory=list)
    applied: list[Event] = field(default_factory=list)


def unexpected(error: Exception) -> InvalidEventError:
    """An error the domain did not foresee, as the reason an event is dead-lettered for."""
    problem = f"the ledger cannot hold it: {type(error).__name__}: {error}"
    return InvalidEventError([FieldProblem("<event>", problem)])


def conflict_reason(event: Event) -> str:
    return (
        f"event_id {event.event_id} already applied with different content; "
        "the first applied version counts"
    )


def decide_line(value: bytes, decide: Callable[[Event], Outcome], into: BatchResult) -> None:
    """Parse one canonical event, let ``decide`` apply it, and file it by its outcome.
    One event that fails, for whatever reason, never stops the others."""
    try:
        event = parse_canonical_event(value)
        outcome = decide(event)
    except InvalidEventError as error:
        into.invalid.append((value, error))
        return
    except Exception as error:
        log.exception("applying an event failed")
        into.invalid.append((value, unexpected(error)))
        return
    if outcome is Outcome.APPLIED:
        into.accepted.append(value)
        into.applied.append(event)
    elif outcome is Outcome.DUPLICATE:
        into.duplicates.append(event)
    elif outcome is Outcome.CONFLICT:
        into.conflicts.append((value, event))
    else:
        into.late.append((value, event))


async def send_refused(
    result: BatchResult, *, policy: MetricPolicy, ops: OpsMetrics, dead_letters: Topic, late: Topic
) -> None:
    """Counted, and sent on: invalid and conflicting events to the dead letters, late
    ones to the late topic; duplicates only counted."""
    for bad, error in result.invalid:
        ops.rejected.labels("ledger").inc()
        log.warning("dead-lettered a fact the ledger cannot hold: %s", error)
        await dead_letters.send(value=bad, headers=[("revpulse-reason", str(error).encode())])
    for conflicting_value, conflicting in result.conflicts:
        ops.conflicting.labels(conflicting.type).inc()
        reason = conflict_reason(conflicting)
        log.warning("dead-lettered: %s", reason)
        await dead_letters.send(
            value=conflicting_value, headers=[("revpulse-reason", reason.encode())]
        )
    for duplicate in result.duplicates:
        ops.duplicates.labels(duplicate.type).inc()
    for late_value, late_event in result.late:
        ops.late.labels(late_event.type).inc()
        reason = f"later than the allowed lateness ({policy.lateness})"
        await late.send(value=late_value, headers=[("revpulse-reason", reason.encode())])
