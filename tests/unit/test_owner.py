"""The ledger owner without a broker: clocks, publications, state deltas, band changes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from models.events import event_to_json
from models.keyed import MemoryMaps
from models.policy import MetricPolicy
from models.publication import Publication
from streams.pipeline.owner import LedgerOwner
from tests.unit.builders import contract, lead

T0 = dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)


def _json(*events: object) -> list[bytes]:
    return [event_to_json(e).encode() for e in events]  # type: ignore[arg-type]


def _value(publication: Publication, metric: str, window: str = "point") -> Decimal | None:
    for point in publication.points:
        if (point.metric, point.window, point.origin, point.channel) == (
            metric, window, "all", "all",
        ):  # fmt: skip
            return point.value
    raise AssertionError(f"no {metric} {window}")


def owner(clock: str = "wall") -> LedgerOwner:
    built = LedgerOwner(MetricPolicy(), clock, "30d")  # type: ignore[arg-type]
    built.install(built.load(MemoryMaps()))
    return built


def test_wall_clock_expires_a_contract_with_no_new_event() -> None:
    subject = owner("wall")
    one_month = contract("c", "C1", "2026-03-01", start_date="2026-03-01", term_months=1,
                         recurring_value="1000")  # fmt: skip
    subject.apply_batch(_json(one_month))
    first = subject.publication(T0)
    assert first is not None and _value(first, "arr") == Decimal(12000)
    assert subject.publication(T0 + dt.timedelta(hours=1)) is None  # same day, nothing new
    later = subject.publication(dt.datetime(2026, 4, 2, tzinfo=dt.UTC))
    assert later is not None and _value(later, "arr") == 0  # term ended on 2026-04-01


def test_event_clock_stays_on_the_watermark() -> None:
    subject = owner("event")
    subject.apply_batch(_json(lead("l1", "L1", "2026-01-05")))
    publication = subject.publication(T0)
    assert publication is not None
    assert publication.clock == dt.datetime(2026, 1, 5, 12, tzinfo=dt.UTC)
    assert publication.points[0].as_of == dt.date(2026, 1, 5)
    assert subject.publication(T0 + dt.timedelta(days=40)) is None


def test_duplicates_and_late_events_are_sorted_out() -> None:
    subject = owner("event")
    recent = lead("l2", "L2", "2026-03-01")
    too_old = lead("l1", "L1", "2026-01-01")  # 59 days behind; the lateness is 7 days
    result = subject.apply_batch(_json(recent, too_old, recent))
    assert [event.event_id for _raw, event in result.late] == ["l1"]
    assert [event.event_id for event in result.duplicates] == ["l2"]
    assert len(result.accepted) == 1
    assert result.invalid == []


def test_an_undecodable_fact_is_reported_not_raised() -> None:
    result = owner().apply_batch([b"{oops"])
    assert len(result.invalid) == 1
    assert result.invalid[0][1].problems[0].field == "<body>"


def test_state_delta_is_full_after_a_rebuild_then_incremental() -> None:
    subject = owner("event")
    subject.apply_batch(_json(contract("c1", "C1", "2026-03-01")))
    first = subject.publication(T0)
    assert first is not None and first.state is not None and first.state.full
    assert set(first.state.contracts) == {"C1"}
    subject.apply_batch(_json(contract("c2", "C2", "2026-03-02", account_id="A2")))
    second = subject.publication(T0)
    assert second is not None and second.state is not None and not second.state.full
    assert set(second.state.contracts) == {"C2"}
    subject.publish_failed()
    subject.apply_batch(_json(lead("l1", "L1", "2026-03-02")))
    third = subject.publication(T0)
    assert third is not None and third.state is not None and third.state.full


@pytest.mark.parametrize(
    ("acv_values", "changes"),
    [
        # 1,000,000 ACV is strong; 490,000 is under: one change, strong -> under
        (["1000000", "480000"], [("strong", "under")]),
        # 490,000 is not below 500,000 less 2 %: only down to moderate
        (["1000000", "490000"], [("strong", "moderate")]),
        # sitting on the 500,000 threshold within the 2 % margin: no flapping
        (["600000", "495000", "505000", "495000"], []),
    ],
)
def test_band_changes_with_hysteresis(
    acv_values: list[str], changes: list[tuple[str, str]]
) -> None:
    seen = []
    subject = owner("event")
    for index, acv in enumerate(acv_values):
        # replace the only marketing contract: a new ledger per value keeps the mean exact
        # the band carries over, as from the table
        subject.install(subject.load(MemoryMaps()), band=subject.band)
        day = f"2026-03-{index + 1:02d}"
        subject.apply_batch(_json(
            lead(f"l{index}", f"L{index}", day),
            contract(f"c{index}", f"C{index}", day, lead_id=f"L{index}", recurring_value=acv),
        ))  # fmt: skip
        publication = subject.publication(T0)
        assert publication is not None
        if publication.band_change is not None:
            seen.append((publication.band_change.previous, publication.band_change.current))
    assert seen == changes


def test_publications_yield_to_the_agents_when_computing_is_slow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    subject = LedgerOwner(MetricPolicy(), "event", "30d", publish_share=0.5)  # type: ignore[arg-type]
    subject.install(subject.load(MemoryMaps()), band=subject.band)
    # (check, start, end) readings; the first publication takes 2 s
    readings = iter([0.0, 0.0, 2.0, 3.0, 5.0, 5.0, 6.0])
    monkeypatch.setattr("streams.pipeline.owner.time.monotonic", lambda: next(readings))
    subject.apply_batch(_json(lead("l1", "L1", "2026-03-01")))
    assert subject.publication(T0) is not None  # computed from 0.0 to 2.0
    subject.apply_batch(_json(lead("l2", "L2", "2026-03-01")))
    assert subject.publication(T0) is None  # at 3.0: only 1 s of the 2 s rest has passed
    assert subject.publication(T0) is not None  # at 5.0: rested; computed 5.0 to 6.0


def test_an_undelivered_band_change_is_carried_to_the_next_publication() -> None:
    subject = owner("event")
    strong = _json(
        lead("l0", "L0", "2026-03-01"),
        contract("c0", "C0", "2026-03-01", lead_id="L0", recurring_value="1000000"),
    )
    subject.apply_batch(strong)
    assert subject.publication(T0) is not None  # strong, no change yet
    subject.published()
    subject.install(subject.load(MemoryMaps()), band=subject.band)
    subject.apply_batch(_json(
        lead("l1", "L1", "2026-03-02"),
        contract("c1", "C1", "2026-03-02", lead_id="L1", recurring_value="100000"),
    ))  # fmt: skip
    first = subject.publication(T0)
    assert first is not None and first.band_change is not None
    subject.publish_failed()  # Redis was down
    again = subject.publication(T0)
    assert again is not None and again.band_change == first.band_change
    subject.published()
    subject.apply_batch(_json(lead("l2", "L2", "2026-03-03")))
    later = subject.publication(T0)
    assert later is not None and later.band_change is None


def test_the_band_from_before_a_restart_makes_a_change_an_alert() -> None:
    subject = LedgerOwner(MetricPolicy(), "event", "30d")  # type: ignore[arg-type]
    # the band the previous owner delivered
    subject.install(subject.load(MemoryMaps()), band="strong")
    subject.apply_batch(_json(
        lead("l1", "L1", "2026-03-02"),
        contract("c1", "C1", "2026-03-02", lead_id="L1", recurring_value="100000"),
    ))  # fmt: skip
    publication = subject.publication(T0)
    assert publication is not None and publication.band_change is not None
    assert (publication.band_change.previous, publication.band_change.current) == (
        "strong",
        "under",
    )


def test_a_publication_drops_the_days_that_left_the_retention_once() -> None:
    subject = LedgerOwner(MetricPolicy(retention_days=30), "wall", "30d")
    subject.install(subject.load(MemoryMaps()))
    subject.apply_batch(_json(lead("l1", "L1", "2026-02-01"), lead("l2", "L2", "2026-03-01")))
    first = subject.publication(dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC))  # keeps from 01-31
    assert first is not None and first.state is not None
    leads_feb_1 = (("leads", "all", "all"), dt.date(2026, 2, 1))
    assert first.state.buckets[leads_feb_1] == 1
    subject.apply_batch(_json(lead("l3", "L3", "2026-03-02")))
    same_day = subject.publication(dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC))
    assert same_day is not None and same_day.state is not None
    assert leads_feb_1 not in same_day.state.buckets  # nothing pruned: not sent again
    next_day = subject.publication(dt.datetime(2026, 3, 3, 9, tzinfo=dt.UTC))  # from 02-01
    assert next_day is not None and next_day.state is not None
    assert leads_feb_1 not in next_day.state.buckets  # 02-01 is still within it
    later = subject.publication(dt.datetime(2026, 3, 4, 9, tzinfo=dt.UTC))  # from 02-02
    assert later is not None and later.state is not None
    assert later.state.buckets[leads_feb_1] == 0  # gone from the copy too
    assert _value(later, "leads", "30d") == 2  # 03-01 and 03-02


def test_a_publication_reports_its_wall_and_cpu_time() -> None:
    subject = owner("event")
    subject.apply_batch(_json(contract("c1", "C1", "2026-03-01")))
    assert subject.publication(T0) is not None
    wall, cpu = subject.last_compute_seconds, subject.last_compute_cpu_seconds
    assert 0 < cpu <= wall + 0.005


def paged_owner(page: int) -> LedgerOwner:
    built = LedgerOwner(MetricPolicy(), "event", "30d", state_page_contracts=page)
    built.install(built.load(MemoryMaps()))
    return built


def five_contracts() -> list[bytes]:
    return _json(*(
        contract(f"c{n}", f"C{n}", "2026-03-01", account_id=f"A{n}") for n in range(1, 6)
    ))  # fmt: skip


def test_a_full_state_is_read_a_page_of_contracts_at_a_time() -> None:
    subject = paged_owner(2)
    subject.apply_batch(five_contracts())
    publication = subject.publication(T0)
    assert publication is not None and publication.state is not None
    assert publication.state.full and set(publication.state.contracts) == {"C1", "C2"}
    assert publication.state.buckets  # everything but the contracts comes at once
    pages = 1
    while subject.state_incomplete:
        # between pages the ledger goes on: a contract signed now comes in the next delta
        subject.apply_batch(_json(contract(f"x{pages}", f"C0{pages}", "2026-03-02")))
        assert subject.read_state_page()
        pages += 1
    assert pages == 3  # 2 + 2 + 1 contracts, and the two signed before the last page
    contracts = publication.state.contracts
    assert {"C1", "C2", "C3", "C4", "C5"} <= set(contracts) and "C02" not in contracts
    subject.apply_batch(_json(lead("l1", "L1", "2026-03-02")))
    after = subject.publication(T0)
    assert after is not None and after.state is not None and not after.state.full
    assert set(after.state.contracts) == {"C01", "C02"}
    assert not subject.state_incomplete


def test_a_full_state_whose_ledger_is_dropped_between_pages_is_not_sent() -> None:
    subject = paged_owner(2)
    subject.apply_batch(five_contracts())
    assert subject.publication(T0) is not None and subject.state_incomplete
    ledger = subject.ledger
    assert ledger is not None
    subject.drop()  # the partition moved, or a flush failed and the ledger is reloaded
    assert subject.state_incomplete  # still: that publication must not go out
    assert subject.read_state_page() is False
    assert not subject.state_incomplete and subject.needs_full_state and subject.dirty
    subject.install(ledger)
    again = subject.publication(T0)
    assert again is not None and again.state is not None and again.state.full
    assert set(again.state.contracts) == {"C1", "C2"} and subject.state_incomplete
