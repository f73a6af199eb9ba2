"""The ledger's state lives in keyed maps: held as bytes, and taken over mid-stream.

A ledger made on maps that hold another ledger's state must go on exactly as the
first would have: the same outcomes for every later event (late, duplicate, conflict),
the same points, the same stored-copy state, equal to the oracle.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from bench.oracle import compute_oracle
from models.events import Event
from models.keyed import MemoryMaps
from models.ledger import Ledger
from models.policy import MetricPolicy
from models.series import compute_points
from tests.property.test_oracle import (
    SETTINGS,
    _by_time,
    as_of_days,
    assert_same_points,
    capped_policies,
    event_logs,
    extra_days,
    interleaved,
    with_duplicates,
    within_lateness,
)

SOURCES = ("0", "1")


def _source(event: Event) -> str:
    return SOURCES[len(event.event_id) % len(SOURCES)]


@SETTINGS
@given(
    data=st.data(),
    events=event_logs(),
    policy=capped_policies,
    cut=st.floats(0, 1),
    extra=extra_days,
)
def test_a_ledger_on_stored_state_goes_on_as_the_first_would(
    data: st.DataObject, events: list[Event], policy: MetricPolicy, cut: float, extra: dt.date
) -> None:
    in_time = within_lateness(data, _by_time(events), policy.lateness)
    stream, _ = with_duplicates(data, interleaved(data, in_time, 2))
    split = int(len(stream) * cut)

    never_reopened = Ledger(policy, SOURCES)
    expected = [never_reopened.apply(event, _source(event)) for event in stream]

    maps = MemoryMaps(encoded=True)  # every read decodes: the codecs must be exact
    first = Ledger(policy, SOURCES, maps)
    outcomes = [first.apply(event, _source(event)) for event in stream[:split]]
    first.store_changes()  # as the worker's flush does
    taken_over = Ledger(policy, SOURCES, maps)
    outcomes += [taken_over.apply(event, _source(event)) for event in stream[split:]]

    assert outcomes == expected
    assert taken_over.accepted_count == never_reopened.accepted_count
    assert taken_over.watermark == never_reopened.watermark
    assert taken_over.lateness_mark() == never_reopened.lateness_mark()
    assert taken_over.admitted_channels == never_reopened.admitted_channels
    assert taken_over.take_delta(full=True) == never_reopened.take_delta(full=True)
    assert taken_over.book_entries() == never_reopened.book_entries()
    for as_of in as_of_days(stream, extra):
        points = compute_points(taken_over, as_of)
        assert_same_points(points, compute_points(never_reopened, as_of))
        assert_same_points(points, compute_oracle(stream, as_of, policy))


def test_only_the_representing_fact_of_an_entity_is_kept() -> None:
    """A lead sent under three event ids keeps one fact: the earliest."""
    from tests.property.test_oracle import _event

    maps = MemoryMaps()
    ledger = Ledger(MetricPolicy(), maps=maps)
    for number, when in enumerate(("2026-03-03", "2026-03-01", "2026-03-02")):
        ledger.apply(
            _event(f"e{number}", "lead.created", f"{when}T10:00:00Z", lead_id="L1",
                   origin="marketing", channel="organic")
        )  # fmt: skip
    leads = maps.maps["ledger.leads"]
    assert len(leads) == 1
    kept = leads.get("L1")
    assert kept is not None and kept.event_id == "e1"
