"""The id gate: repeats and late events judged by ids and marks alone, in the ledger's own
layout; and the ledger applying what a gate admitted."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from models.errors import InvalidEventError
from models.events import Event, parse_event
from models.id_gate import IdGate
from models.keyed import MemoryMaps
from models.ledger import Ledger, Outcome
from models.policy import MetricPolicy
from models.windows import Window
from streams.pipeline.state_table import TableMaps
from tests.unit.builders import churn, contract, lead, raw_event, spend
from tests.unit.pipeline_fakes import FakeTable
from tests.unit.test_ledger import POISON, _snapshot, _unchecked

DAY = dt.timedelta(days=1)
POLICY = MetricPolicy(lateness=DAY, dedup_horizon=3 * DAY)
MARCH = Window("month", dt.date(2024, 3, 1), dt.date(2024, 3, 31))


def at(day: str, hour: int = 12) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=dt.UTC)


def spend_on(event_id: str, day: str, amount: str = "10") -> Event:
    return spend(event_id, "organic", amount, day)


def gate_state(maps: MemoryMaps) -> dict[str, list[tuple[str, Any]]]:
    return {name: sorted(opened.items()) for name, opened in maps.maps.items()}


# -- outcomes ---------------------------------------------------------------------------


def test_an_id_is_applied_once_then_a_duplicate_or_a_conflict() -> None:
    gate = IdGate(POLICY)
    assert gate.admit(spend_on("s1", "2024-03-10")) is Outcome.APPLIED
    assert gate.admit(spend_on("s1", "2024-03-10")) is Outcome.DUPLICATE
    assert gate.admit(spend_on("s1", "2024-03-10", "11")) is Outcome.CONFLICT
    rewritten = parse_event(
        raw_event("spend.recorded", "s1", "2024-03-10T14:00:00+02:00",
                  {"channel": "Organic", "amount": "1.0E+1", "currency": "USD"})
    )  # fmt: skip
    assert gate.admit(rewritten) is Outcome.DUPLICATE
    assert gate.admit(spend_on("s2", "2024-03-10", "11")) is Outcome.APPLIED


def test_late_behind_the_slowest_of_two_sources() -> None:
    gate = IdGate(POLICY, sources=("crm", "billing"))
    assert gate.admit(spend_on("a1", "2024-03-20"), "crm") is Outcome.APPLIED
    assert gate.lateness_mark() is None  # billing not seen yet: nothing is late
    assert gate.admit(spend_on("a2", "2024-03-01"), "crm") is Outcome.APPLIED
    assert gate.admit(spend_on("b1", "2024-03-05"), "billing") is Outcome.APPLIED
    assert gate.lateness_mark() == at("2024-03-05")
    # more than a day behind billing's mark, whichever source sends it
    assert gate.admit(spend_on("a3", "2024-03-03"), "crm") is Outcome.LATE
    assert gate.admit(spend_on("a4", "2024-03-04"), "crm") is Outcome.APPLIED
    assert gate.admit(spend_on("b2", "2024-03-20"), "billing") is Outcome.APPLIED
    assert gate.lateness_mark() == at("2024-03-20")
    assert gate.admit(spend_on("a5", "2024-03-18"), "billing") is Outcome.LATE
    assert gate.admit(spend_on("a5", "2024-03-19"), "billing") is Outcome.APPLIED
    assert gate.is_late(spend_on("a6", "2024-03-18"))


def test_a_late_event_is_not_remembered() -> None:
    gate = IdGate(POLICY)
    gate.admit(spend_on("s1", "2024-03-10"))
    assert gate.admit(spend_on("old", "2024-03-01")) is Outcome.LATE
    # a repeat is found before lateness is judged: a late re-send of a known id is a repeat
    assert gate.admit(spend_on("s1", "2024-03-10", "99")) is Outcome.CONFLICT
    restored = IdGate(POLICY)
    assert restored.restore(spend_on("old", "2024-03-01")) is Outcome.APPLIED


def test_a_gate_judges_late_only_by_the_marks_it_was_told() -> None:
    """A partition that saw no event of a source since hears of its progress by advance()."""
    told, untold = IdGate(POLICY, ("crm", "billing")), IdGate(POLICY, ("crm", "billing"))
    for gate in (told, untold):
        assert gate.admit(spend_on("c1", "2024-03-10"), "crm") is Outcome.APPLIED
        assert gate.admit(spend_on("b1", "2024-03-02"), "billing") is Outcome.APPLIED
    told.advance("billing", at("2024-03-10"))  # billing got there on another partition
    assert told.lateness_mark() == at("2024-03-10")
    assert untold.lateness_mark() == at("2024-03-02")
    assert told.admit(spend_on("c2", "2024-03-05"), "crm") is Outcome.LATE
    assert untold.admit(spend_on("c2", "2024-03-05"), "crm") is Outcome.APPLIED


def test_marks_never_move_back() -> None:
    maps = MemoryMaps()
    gate = IdGate(POLICY, maps=maps)
    gate.advance("", at("2024-03-10"))
    gate.advance("", at("2024-03-02"))
    assert gate.lateness_mark() == at("2024-03-10")
    assert gate.admit(spend_on("s1", "2024-03-09")) is Outcome.APPLIED  # within the lateness
    assert gate.lateness_mark() == at("2024-03-10")
    gate.advance("", at("2024-03-12"))
    assert gate.lateness_mark() == at("2024-03-12")
    assert IdGate(POLICY, maps=maps).lateness_mark() == at("2024-03-12")  # as stored
    with pytest.raises(ValueError, match="offset"):
        gate.advance("", dt.datetime(2024, 3, 20))
    assert gate.lateness_mark() == at("2024-03-12")


# -- an event no ledger can hold --------------------------------------------------------


NO_RATE = (
    _unchecked(spend("p1", "organic", "10", "2024-03-12"), data_currency="JPY"),
    "data.currency",
)


@pytest.mark.parametrize(("poison", "field"), [*POISON, NO_RATE])
@pytest.mark.parametrize("how", ["admit", "restore"])
def test_an_event_that_cannot_be_held_leaves_the_gate_as_it_was(
    poison: Event, field: str, how: str
) -> None:
    maps = MemoryMaps()
    gate = IdGate(POLICY, sources=("crm",), maps=maps)
    gate.admit(spend_on("s1", "2024-03-11"), "crm")
    before = gate_state(maps)
    with pytest.raises(InvalidEventError) as caught:
        if how == "admit":
            gate.admit(poison, "crm")
        else:
            gate.restore(poison)
    assert [problem.field for problem in caught.value.problems] == [field]
    assert gate_state(maps) == before
    assert gate.lateness_mark() == at("2024-03-11")
    # the same id is still free
    assert gate.admit(spend_on("p1", "2024-03-12"), "crm") is Outcome.APPLIED


# -- the dedup horizon -------------------------------------------------------------------


def test_forget_ids_through_the_gate() -> None:
    policy = MetricPolicy(lateness=DAY, dedup_horizon=3 * DAY)
    gate = IdGate(policy)
    assert gate.dedup_horizon == 3 * DAY
    assert IdGate(MetricPolicy(lateness=10 * DAY, dedup_horizon=DAY)).dedup_horizon == 10 * DAY
    for event_id, day in [("a", "2024-03-01"), ("b", "2024-03-02")]:
        assert gate.admit(spend_on(event_id, day)) is Outcome.APPLIED
    assert gate.forget_ids(100) == 0  # the cutoff, 02-28 noon, is past neither day
    assert gate.admit(spend_on("c", "2024-03-09")) is Outcome.APPLIED
    assert gate.forget_ids(100) == 2  # cutoff 03-06 noon: the 1st and the 2nd are over
    assert gate.forgotten_count == 2
    # a re-send of a forgotten id is late, never applied again
    assert gate.admit(spend_on("a", "2024-03-01")) is Outcome.LATE
    assert gate.restore(spend_on("b", "2024-03-02")) is Outcome.LATE
    assert gate.admit(spend_on("c", "2024-03-09")) is Outcome.DUPLICATE
    gate.advance("", at("2024-03-20"))  # a heartbeat moves the forgetting on too
    assert gate.forget_ids(100) == 1
    assert gate.forgotten_count == 3
    assert gate.admit(spend_on("c", "2024-03-09")) is Outcome.LATE


# -- the ledger's layout ----------------------------------------------------------------------


STREAM: list[tuple[Event, str]] = [
    (lead("e1", "L1", "2024-03-01"), "crm"),
    (spend_on("s1", "2024-03-02"), "billing"),
    (contract("k1", "C1", "2024-03-03", lead_id="L1"), "crm"),
    (spend_on("s2", "2024-03-09"), "billing"),
    (churn("x1", "A1", "2024-03-10"), "crm"),
    (spend_on("s3", "2024-03-12"), "billing"),
    (lead("e2", "L2", "2024-03-14"), "crm"),
]
PROBES: list[tuple[Event, str]] = [
    (spend_on("s1", "2024-03-02"), "billing"),  # forgotten: late
    (spend_on("s2", "2024-03-09"), "billing"),  # remembered: duplicate
    (spend_on("s3", "2024-03-12", "12"), "crm"),  # conflict
    (spend_on("n1", "2024-03-10"), "crm"),  # late behind the marks
    (spend_on("n2", "2024-03-13"), "billing"),
    (spend_on("n2", "2024-03-13"), "crm"),
]


def fed_ledger(maps: Any) -> Ledger:
    ledger = Ledger(POLICY, ("crm", "billing"), maps)
    for event, source in STREAM:
        assert ledger.apply(event, source) is Outcome.APPLIED
    while ledger.forget_ids(2):
        pass
    assert ledger.forgotten_count == 3
    return ledger


def test_a_ledgers_state_loads_in_a_gate_with_the_same_decisions() -> None:
    maps = MemoryMaps(encoded=True)
    fed_ledger(maps)
    gate = IdGate(POLICY, ("crm", "billing"), maps, prefix="ledger")
    twin = fed_ledger(MemoryMaps(encoded=True))
    assert gate.lateness_mark() == twin.lateness_mark() == at("2024-03-12")
    assert gate.forgotten_count == twin.forgotten_count == 3
    decided = [gate.admit(event, source) for event, source in PROBES]
    assert decided == [twin.apply(event, source) for event, source in PROBES]
    assert decided == [
        Outcome.LATE, Outcome.DUPLICATE, Outcome.CONFLICT, Outcome.LATE,
        Outcome.APPLIED, Outcome.DUPLICATE,
    ]  # fmt: skip


def test_a_gate_stores_what_the_ledger_stores_of_ids_and_marks() -> None:
    ledger_maps, gate_maps = MemoryMaps(encoded=True), MemoryMaps(encoded=True)
    fed_ledger(ledger_maps)
    gate = IdGate(POLICY, ("crm", "billing"), gate_maps)
    for event, source in STREAM:
        assert gate.admit(event, source) is Outcome.APPLIED
    while gate.forget_ids(2):
        pass
    ledgers, gates = gate_state(ledger_maps), gate_state(gate_maps)
    assert sorted(gates) == [
        "ledger.counts", "ledger.forgetting", "ledger.id_days", "ledger.ids", "ledger.marks",
    ]  # fmt: skip
    for name in ("ledger.ids", "ledger.id_days", "ledger.forgetting"):
        assert gates[name] == ledgers[name]
    assert gates["ledger.marks"] == [kv for kv in ledgers["ledger.marks"] if kv[0] != "watermark"]
    assert gates["ledger.counts"] == [("ids_forgotten", 3)]
    assert ("accepted", 7) in ledgers["ledger.counts"]


def test_a_gate_with_its_own_prefix_keeps_apart() -> None:
    maps = MemoryMaps()
    ledger = Ledger(POLICY, maps=maps)
    gate = IdGate(POLICY, maps=maps, prefix="gate")
    assert gate.admit(spend_on("s1", "2024-03-10")) is Outcome.APPLIED
    assert ledger.apply(spend_on("s1", "2024-03-10")) is Outcome.APPLIED
    assert sorted(maps.maps["gate.ids"].items()) == sorted(maps.maps["ledger.ids"].items())
    assert sorted(maps.maps["gate.marks"].items()) == [("source:", at("2024-03-10"))]


def test_a_ledger_stored_in_a_table_loads_in_a_gate() -> None:
    table = FakeTable()
    maps = TableMaps(table)
    fed_ledger(maps).store_changes()
    wal, records = maps.take_records()
    for key, data in [*wal, *records]:
        table.log(key, data)
    maps.settle()
    gate = IdGate(POLICY, ("crm", "billing"), TableMaps(table))
    twin = fed_ledger(MemoryMaps())
    assert gate.lateness_mark() == twin.lateness_mark()
    assert [gate.admit(e, s) for e, s in PROBES] == [twin.apply(e, s) for e, s in PROBES]


# -- the ledger applying what a gate admitted ---------------------------------------------


def test_apply_admitted_checks_no_id_and_no_lateness() -> None:
    ledger = Ledger(POLICY)
    assert ledger.apply_admitted(spend_on("s1", "2024-03-20")) is Outcome.APPLIED
    # far behind the watermark, and an id seen: the gate upstream judged, not the ledger
    assert ledger.apply_admitted(spend_on("s0", "2024-03-01")) is Outcome.APPLIED
    assert ledger.apply_admitted(spend_on("s1", "2024-03-20")) is Outcome.APPLIED
    assert ledger.accepted_count == 3
    assert ledger.watermark == at("2024-03-20")
    assert ledger.buckets.total("spend", ("all", "all"), MARCH) == Decimal(30)
    assert ledger.lateness_mark() is None  # no mark moved, no id remembered
    assert ledger.apply(spend_on("s1", "2024-03-20")) is Outcome.APPLIED


def test_an_id_the_ledger_accepted_before_the_gate_is_still_a_repeat() -> None:
    ledger = Ledger(POLICY)  # an earlier version's ledger: it kept the ids itself
    assert ledger.apply(spend_on("s1", "2024-03-20")) is Outcome.APPLIED
    assert ledger.apply_admitted(spend_on("s1", "2024-03-20")) is Outcome.DUPLICATE
    other = spend("s1", "organic", "99", "2024-03-20")
    assert ledger.apply_admitted(other) is Outcome.CONFLICT
    assert ledger.accepted_count == 1
    assert ledger.buckets.total("spend", ("all", "all"), MARCH) == Decimal(10)


def test_apply_admitted_stores_no_id() -> None:
    maps = MemoryMaps()
    ledger = Ledger(POLICY, maps=maps)
    ledger.apply_admitted(lead("e1", "L1", "2024-03-01", channel="organic"))
    assert list(maps.maps["ledger.ids"].items()) == []
    assert sorted(maps.maps["ledger.marks"].items()) == [("watermark", at("2024-03-01"))]
    assert ledger.admitted_channels == ("organic",)


@pytest.mark.parametrize(("poison", "field"), POISON)
def test_apply_admitted_of_an_event_that_cannot_be_held_changes_nothing(
    poison: Event, field: str
) -> None:
    ledger = Ledger(MetricPolicy(max_channels=2))
    ledger.apply_admitted(lead("e1", "L1", "2024-03-10", estimated_value="100"))
    ledger.apply_admitted(spend("s1", "organic", "10", "2024-03-11"))
    before = _snapshot(ledger)
    with pytest.raises(InvalidEventError) as caught:
        ledger.apply_admitted(poison)
    assert [problem.field for problem in caught.value.problems] == [field]
    assert _snapshot(ledger) == before
    assert ledger.take_overflowed_channels() == []


def test_gates_and_a_ledger_of_admitted_events_add_up_as_one_ledger() -> None:
    split = Ledger(POLICY, ("crm", "billing"))
    gate = IdGate(POLICY, ("crm", "billing"))
    whole = Ledger(POLICY, ("crm", "billing"))
    for event, source in [*STREAM, *PROBES]:
        outcome = gate.admit(event, source)
        if outcome is Outcome.APPLIED:
            split.apply_admitted(event)
        assert whole.apply(event, source) is outcome
    assert split.buckets.as_dict() == whole.buckets.as_dict()
    assert split.booked_contracts() == whole.booked_contracts()
    assert split.accepted_count == whole.accepted_count
