"""A ledger that forgets ids past the dedup horizon as it goes still equals the oracle.

With the horizon as short as it may be (the lateness), ids of the drawn fortnight are
forgotten while events arrive; each re-sent event is then a duplicate or late, never
counted twice, and the points are the oracle's over everything sent.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from models.events import Event
from models.keyed import MemoryMaps
from models.ledger import Ledger, Outcome
from models.policy import MetricPolicy
from tests.property.test_oracle import (
    SETTINGS,
    _by_time,
    assert_matches_oracle,
    event_logs,
    extra_days,
    policies,
    with_duplicates,
    within_lateness,
)


@SETTINGS
@given(
    data=st.data(),
    events=event_logs(),
    policy=policies,
    lateness_hours=st.sampled_from((1, 24, 72)),
    limit=st.integers(1, 5),
    extra=extra_days,
)
def test_forgetting_ids_as_events_arrive_keeps_the_oracles_figures(
    data: st.DataObject,
    events: list[Event],
    policy: MetricPolicy,
    lateness_hours: int,
    limit: int,
    extra: dt.date,
) -> None:
    lateness = dt.timedelta(hours=lateness_hours)
    policy = dataclasses.replace(policy, lateness=lateness, dedup_horizon=lateness)
    in_time = within_lateness(data, _by_time(events), lateness)
    stream, resent = with_duplicates(data, in_time)
    maps = MemoryMaps(encoded=True)
    ledger = Ledger(policy, maps=maps)
    outcomes = []
    for event in stream:
        outcomes.append(ledger.apply(event))
        ledger.forget_ids(limit)
    assert outcomes.count(Outcome.APPLIED) == len(events) == ledger.accepted_count
    assert outcomes.count(Outcome.DUPLICATE) + outcomes.count(Outcome.LATE) == resent
    remembered = sum(1 for _ in maps.maps["ledger.ids"].items())
    assert remembered + ledger.forgotten_count == len(events)
    assert_matches_oracle(ledger, stream, policy, extra)
