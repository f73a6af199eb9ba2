"""The worker split in two: id gates partitioned by event id, then one ledger applying what
they admitted, add up to what one ledger judging for itself adds up to, and to the oracle.

Whatever the arrival order, re-sends (same content) and conflicting re-sends (same id,
other content), each id is judged by one gate only (the partition of its id), so the
gates admit exactly the events one ledger would apply. With a lateness nothing is late
in (lateness is judged per gate partition, by design: models.id_gate), the figures of
``Ledger.apply_admitted`` over the admitted events, in arrival order, are those of
``Ledger.apply`` over the whole stream.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import zlib

from hypothesis import given
from hypothesis import strategies as st

from models.events import Event
from models.id_gate import IdGate
from models.ledger import Ledger, Outcome
from models.policy import MetricPolicy
from models.series import compute_points
from tests.property.test_oracle import (
    SETTINGS,
    _by_time,
    as_of_days,
    assert_matches_oracle,
    assert_same_points,
    capped_policies,
    event_logs,
    extra_days,
    feed,
    policies,
    with_duplicates,
)

GATES = 3
NEVER_LATE = dt.timedelta(days=10_000)


def gate_of(event: Event, partitions: int) -> int:
    """The gate partition of an event: a stable hash of its id."""
    return zlib.crc32(event.event_id.encode()) % partitions


def with_conflicts(data: st.DataObject, events: list[Event]) -> tuple[list[Event], int]:
    """The stream with some events re-sent with other content (a later ``occurred_at``)
    at random points, before or after the first copy: whichever arrives first counts."""
    stream = list(events)
    resent = data.draw(st.lists(st.sampled_from(events), max_size=6))
    for event in resent:
        shifted = event.occurred_at + dt.timedelta(hours=data.draw(st.integers(1, 72)))
        changed = event.model_copy(update={"occurred_at": shifted})
        stream.insert(data.draw(st.integers(0, len(stream))), changed)
    return stream, len(resent)


def split_feed(
    policy: MetricPolicy, stream: list[Event], partitions: int
) -> tuple[Ledger, list[Outcome]]:
    """Each event judged by the gate of its id; what it admits applied to one ledger."""
    gates = [IdGate(policy) for _ in range(partitions)]
    ledger = Ledger(policy)
    outcomes = []
    for event in stream:
        outcome = gates[gate_of(event, partitions)].admit(event)
        if outcome is Outcome.APPLIED:
            assert ledger.apply_admitted(event) is Outcome.APPLIED
        outcomes.append(outcome)
    return ledger, outcomes


@SETTINGS
@given(
    data=st.data(),
    events=event_logs(),
    policy=st.one_of(policies, capped_policies),
    extra=extra_days,
)
def test_gates_by_event_id_and_one_ledger_add_up_as_one_ledger(
    data: st.DataObject, events: list[Event], policy: MetricPolicy, extra: dt.date
) -> None:
    policy = dataclasses.replace(policy, lateness=NEVER_LATE)
    repeated, resent = with_duplicates(data, _by_time(events))
    produced, conflicting = with_conflicts(data, repeated)
    stream = data.draw(st.permutations(produced))

    split, outcomes = split_feed(policy, stream, GATES)
    whole = Ledger(policy)
    assert feed(whole, stream) == outcomes
    assert Outcome.LATE not in outcomes
    assert outcomes.count(Outcome.APPLIED) == len(events)
    assert outcomes.count(Outcome.DUPLICATE) + outcomes.count(Outcome.CONFLICT) == (
        resent + conflicting
    )

    assert split.accepted_count == whole.accepted_count == len(events)
    assert split.watermark == whole.watermark
    assert split.admitted_channels == whole.admitted_channels
    assert split.buckets.as_dict() == whole.buckets.as_dict()
    assert split.booked_contracts() == whole.booked_contracts()
    assert split.churns() == whole.churns()
    for as_of in as_of_days(stream, extra):
        assert_same_points(compute_points(split, as_of), compute_points(whole, as_of))
    # the oracle gets the whole stream, repeats included: the first copy of an id counts
    assert_matches_oracle(split, stream, policy, extra)
