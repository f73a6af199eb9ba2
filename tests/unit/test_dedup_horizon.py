"""The dedup horizon: accepted event ids are forgotten a horizon behind the lateness mark,
a bounded slice at a time, and no event counts twice for it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import ValidationError

from models.dedup import SEEN_ID, SeenId, forgettable
from models.events import Event, canonical_digest, parse_event
from models.id_gate import INDEXED
from models.keyed import DictMap, EncodedMap, MemoryMaps
from models.ledger import PASS_CURSOR, Ledger, Outcome
from models.ledger_codecs import INSTANT
from models.policy import MetricPolicy
from models.series import compute_points
from models.windows import Window
from streams.pipeline.state_table import TableMaps
from streams.settings import Settings
from tests.unit.builders import raw_event
from tests.unit.pipeline_fakes import FakeTable
from tests.unit.test_ledger_stage import Harness, headers, line

POLICY = MetricPolicy(lateness=dt.timedelta(days=1), dedup_horizon=dt.timedelta(days=3))
MARCH = Window("month", dt.date(2024, 3, 1), dt.date(2024, 3, 31))


def spend_at(event_id: str, when: str, amount: str = "100") -> Event:
    data = {"channel": "organic", "amount": amount, "currency": "USD"}
    return parse_event(raw_event("spend.recorded", event_id, when, data))


def spent(ledger: Ledger) -> Any:
    return ledger.buckets.total("spend", ("all", "all"), MARCH)


def remembered(maps: MemoryMaps) -> list[str]:
    return sorted(key for key, _seen in maps.maps["ledger.ids"].items())


def without_the_index(maps: MemoryMaps) -> None:
    """The maps as the release before the index by day left them: no ledger.id_days, and
    no record of the indexing."""
    days = maps.maps.pop("ledger.id_days", None)
    assert days is not None and len(days) == len(maps.maps["ledger.ids"])
    maps.maps["ledger.forgetting"].delete(INDEXED)


def forget_all(ledger: Ledger) -> int:
    """Every slice of the pass due now."""
    forgotten = 0
    while True:
        forgotten += ledger.forget_ids(1000)
        if not ledger.pass_under_way:
            return forgotten


# -- when an id is forgotten ------------------------------------------------------


@pytest.mark.parametrize("encoded", [False, True])
@pytest.mark.parametrize(
    ("mark", "forgotten"),
    [
        # the event is at 23:00 on 03-01: its day ends 03-02 00:00, a 3-day horizon later
        # is 03-05 00:00
        ("2024-03-04T23:59:59Z", False),
        ("2024-03-05T00:00:00Z", True),
        ("2024-03-09T12:00:00Z", True),
    ],
)
def test_an_id_is_forgotten_only_once_the_mark_is_a_horizon_past_its_day(
    mark: str, forgotten: bool, encoded: bool
) -> None:
    maps = MemoryMaps(encoded=encoded)
    ledger = Ledger(POLICY, maps=maps)
    first = spend_at("e1", "2024-03-01T23:00:00Z")
    assert ledger.apply(first) is Outcome.APPLIED
    assert ledger.apply(spend_at("mark", mark, "1")) is Outcome.APPLIED
    assert forget_all(ledger) == int(forgotten)
    assert remembered(maps) == (["mark"] if forgotten else ["e1", "mark"])
    assert ledger.forgotten_count == int(forgotten)
    # a re-send is late once forgotten (more than the lateness behind), else a duplicate
    assert ledger.apply(first) is (Outcome.LATE if forgotten else Outcome.DUPLICATE)
    assert spent(ledger) == 101


def test_a_duplicate_of_a_forgotten_event_is_late_and_changes_no_figure() -> None:
    maps = MemoryMaps()
    ledger = Ledger(POLICY, maps=maps)
    old = spend_at("e1", "2024-03-01T12:00:00Z")
    for event in (old, spend_at("e2", "2024-03-20T12:00:00Z", "5")):
        assert ledger.apply(event) is Outcome.APPLIED
    assert forget_all(ledger) == 1 and remembered(maps) == ["e2"]
    before = compute_points(ledger, dt.date(2024, 3, 20))
    assert ledger.apply(old) is Outcome.LATE
    assert ledger.restore(old) is Outcome.LATE  # a migration of old logs cannot count it
    assert compute_points(ledger, dt.date(2024, 3, 20)) == before
    assert spent(ledger) == 105 and ledger.accepted_count == 2


def test_a_conflicting_resend_within_the_horizon_is_still_a_conflict() -> None:
    ledger = Ledger(POLICY)
    assert ledger.apply(spend_at("e1", "2024-03-01T12:00:00Z")) is Outcome.APPLIED
    # past the lateness (1 day), within the horizon (3 days)
    assert ledger.apply(spend_at("e2", "2024-03-03T12:00:00Z", "5")) is Outcome.APPLIED
    assert forget_all(ledger) == 0
    assert ledger.apply(spend_at("e1", "2024-03-01T12:00:00Z", "7")) is Outcome.CONFLICT
    # the same id with other content, dated now: still a conflict, never counted
    assert ledger.apply(spend_at("e1", "2024-03-03T13:00:00Z", "7")) is Outcome.CONFLICT
    assert spent(ledger) == 105


def test_a_conflicting_resend_after_the_horizon_with_a_later_time_counts() -> None:
    """What the horizon does not cover, as documented: a forgotten id sent again with
    other content and a recent occurred_at is a new event."""
    ledger = Ledger(POLICY)
    assert ledger.apply(spend_at("e1", "2024-03-01T12:00:00Z")) is Outcome.APPLIED
    assert ledger.apply(spend_at("e2", "2024-03-20T12:00:00Z", "5")) is Outcome.APPLIED
    assert forget_all(ledger) == 1
    assert ledger.apply(spend_at("e1", "2024-03-20T13:00:00Z", "7")) is Outcome.APPLIED
    assert spent(ledger) == 112


def test_the_horizon_is_never_shorter_than_the_lateness() -> None:
    policy = MetricPolicy(lateness=dt.timedelta(days=10), dedup_horizon=dt.timedelta(days=3))
    ledger = Ledger(policy)
    assert ledger.dedup_horizon == dt.timedelta(days=10)
    first = spend_at("e1", "2024-03-01T12:00:00Z")
    ledger.apply(first)
    ledger.apply(spend_at("e2", "2024-03-10T12:00:00Z"))  # 9 days on: within the lateness
    assert forget_all(ledger) == 0
    assert ledger.apply(first) is Outcome.DUPLICATE


# -- passes: bounded, resumable, spaced out -----------------------------------------


def test_a_pass_is_bounded_per_call_and_goes_on_where_it_stopped() -> None:
    maps = MemoryMaps()
    ledger = Ledger(POLICY, maps=maps)
    for number in range(10):
        ledger.apply(spend_at(f"a{number}", "2024-03-01T12:00:00Z", "1"))
    ledger.apply(spend_at("z", "2024-03-20T12:00:00Z", "1"))
    assert ledger.forget_ids(4) == 4
    assert remembered(maps) == ["a4", "a5", "a6", "a7", "a8", "a9", "z"]
    assert ledger.forget_ids(4) == 4
    # a ledger made on the same maps (a restart) goes on from the stored cursor
    ledger.store_changes()
    again = Ledger(POLICY, maps=maps)
    assert again.forget_ids(4) == 2  # a8, a9, and z: fewer than 4, so the pass is done
    assert remembered(maps) == ["z"]
    assert again.forgotten_count == 10 and again.accepted_count == 11
    assert again.forget_ids(4) == 0  # no pass is due: nothing is read
    assert maps.maps["ledger.forgetting"].get(PASS_CURSOR) is None


def test_a_pass_starts_only_when_the_cutoff_moved_half_a_horizon() -> None:
    maps = MemoryMaps()
    ledger = Ledger(POLICY, maps=maps)
    ledger.apply(spend_at("a", "2024-03-10T12:00:00Z"))
    ledger.apply(spend_at("m", "2024-03-13T12:00:00Z"))
    assert forget_all(ledger) == 0  # the first pass: cutoff 03-10 12:00, "a" is kept
    ledger.apply(spend_at("b", "2024-03-14T23:00:00Z"))  # cutoff 03-11 23:00: 1.5 days less 1h
    assert ledger.forget_ids(100) == 0
    assert remembered(maps) == ["a", "b", "m"]  # "a" could go, but no pass is due
    ledger.apply(spend_at("c", "2024-03-15T00:00:00Z"))  # 1.5 days on: a pass is due
    assert forget_all(ledger) == 1 and remembered(maps) == ["b", "c", "m"]
    assert maps.maps["ledger.marks"].get("ids_forgotten_before") == dt.datetime(
        2024, 3, 12, tzinfo=dt.UTC
    )


def test_an_event_older_than_the_ids_forgotten_is_late_when_the_marks_start_again() -> None:
    """With a partition added, the lateness mark waits for it (nothing is late by the
    lateness then), but an event older than the ids forgotten may have counted."""
    maps = MemoryMaps()
    ledger = Ledger(POLICY, ("0",), maps)
    old = spend_at("e1", "2024-03-01T12:00:00Z")
    ledger.apply(old, "0")
    ledger.apply(spend_at("e2", "2024-03-20T12:00:00Z"), "0")
    assert forget_all(ledger) == 1
    ledger.store_changes()  # as the worker's flush does
    wider = Ledger(POLICY, ("0", "1"), maps)
    assert wider.lateness_mark() is None
    assert wider.apply(old, "1") is Outcome.LATE
    assert wider.forget_ids(100) == 0  # no mark: no pass
    assert spent(wider) == 200


# -- ids stored by the release before the horizon ---------------------------------


def test_a_value_without_a_day_decodes_and_a_value_with_one_round_trips() -> None:
    digest = bytes(range(8))
    assert SEEN_ID.decode(digest) == SeenId(digest, None)
    seen = SeenId(digest, dt.date(2024, 3, 1))
    assert SEEN_ID.decode(SEEN_ID.encode(seen)) == seen
    assert SEEN_ID.encode(SeenId(digest, None)) == digest
    assert len(SEEN_ID.encode(seen)) == 12


def test_an_id_without_a_day_is_given_the_watermarks_and_forgotten_a_horizon_later() -> None:
    maps = MemoryMaps(encoded=True)
    ledger = Ledger(POLICY, maps=maps)
    old = spend_at("e1", "2024-03-01T12:00:00Z")
    ledger.apply(old)
    ledger.apply(spend_at("e2", "2024-03-02T12:00:00Z"))
    ledger.store_changes()
    ids = maps.maps["ledger.ids"]
    assert isinstance(ids, EncodedMap)
    for key in ("e1", "e2"):  # as the release before the horizon wrote them: the digest alone
        ids._values[key] = ids._values[key][:8]
    without_the_index(maps)
    ledger = Ledger(POLICY, maps=maps)
    ledger.apply(spend_at("e3", "2024-03-10T12:00:00Z"))  # cutoff 03-07: e1's day is past
    assert forget_all(ledger) == 0  # no day: given the watermark's (03-10), kept
    assert ids.get("e1") == SeenId(canonical_digest(old), dt.date(2024, 3, 10))
    assert ledger.apply(old) is Outcome.DUPLICATE
    ledger.apply(spend_at("e4", "2024-03-13T23:00:00Z"))  # cutoff 03-10 23:00
    assert forget_all(ledger) == 0  # 03-10 has not ended a horizon ago
    ledger.apply(spend_at("e5", "2024-03-20T12:00:00Z"))  # cutoff 03-17 12:00
    assert forget_all(ledger) == 4
    assert sorted(key for key, _ in ids.items()) == ["e5"]
    assert ledger.apply(old) is Outcome.LATE
    assert spent(ledger) == 500


def test_forgettable_compares_the_end_of_the_day_with_the_cutoff() -> None:
    day = dt.date(2024, 3, 1)
    assert not forgettable(day, dt.datetime(2024, 3, 1, 23, 59, tzinfo=dt.UTC))
    assert forgettable(day, dt.datetime(2024, 3, 2, tzinfo=dt.UTC))
    # a cutoff with an offset is compared as its UTC instant
    east = dt.timezone(dt.timedelta(hours=2))
    assert not forgettable(day, dt.datetime(2024, 3, 2, 1, 0, tzinfo=east))
    assert forgettable(day, dt.datetime(2024, 3, 2, 2, 0, tzinfo=east))


# -- items_after: every kind of map walks in key order --------------------------------


def table_map_with_overlays() -> Any:
    """A TableMap whose entries are in the table, in flight and pending."""
    maps = TableMaps(FakeTable())
    opened = maps.open("m", INSTANT)
    at = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    for key in ("b", "d", "f", "h", "j"):
        opened.put(key, at)
    wal, records = maps.take_records()
    for key, value in [*wal, *records]:
        maps.table.log(key, value)
    maps.settle()  # in the table
    opened.put("c", at)
    opened.delete("d")
    maps.take_records()  # in flight
    opened.put("a", at)
    opened.put("k", at)
    opened.delete("h")
    opened.put("d", at + dt.timedelta(days=1))  # pending wins over in flight
    return opened


@pytest.mark.parametrize("kind", ["dict", "encoded", "table"])
@pytest.mark.parametrize("limit", [1, 2, 3, 100])
def test_items_after_walks_every_map_in_key_order_a_slice_at_a_time(kind: str, limit: int) -> None:
    if kind == "table":
        walked_map = table_map_with_overlays()
    else:
        walked_map = DictMap() if kind == "dict" else EncodedMap(INSTANT)
        for key in ("a", "b", "c", "d", "f", "j", "k"):
            walked_map.put(key, dt.datetime(2024, 3, 1, tzinfo=dt.UTC))
    expected = sorted(walked_map.items())
    assert [key for key, _ in expected] == ["a", "b", "c", "d", "f", "j", "k"]
    walked: list[Any] = []
    after: str | None = None
    while True:
        part = walked_map.items_after(after, limit)
        assert len(part) <= limit
        walked.extend(part)
        if len(part) < limit:
            break
        after = part[-1][0]
    assert walked == expected


def test_a_walk_of_a_map_in_memory_skips_what_was_deleted_meanwhile() -> None:
    walked_map: DictMap[int] = DictMap()
    for number, key in enumerate("abcdef"):
        walked_map.put(key, number)
    assert walked_map.items_after(None, 2) == [("a", 0), ("b", 1)]
    walked_map.delete("c")
    assert walked_map.items_after("b", 2) == [("d", 3), ("e", 4)]
    assert walked_map.items_after("a", 2) == [("b", 1), ("d", 3)]  # another walk
    assert walked_map.items_after("x", 2) == []


# -- the setting -------------------------------------------------------------------


def test_the_horizon_setting_defaults_to_14_days_or_the_lateness() -> None:
    assert Settings().policy().dedup_horizon == dt.timedelta(days=14)
    longer = Settings(lateness_seconds=30 * 86400)
    assert longer.policy().dedup_horizon == dt.timedelta(days=30)
    assert Settings(dedup_horizon_seconds=86400 * 20).policy().dedup_horizon == dt.timedelta(
        days=20
    )


def test_a_horizon_shorter_than_the_lateness_is_refused() -> None:
    with pytest.raises(ValidationError, match="shorter than REVPULSE_LATENESS_SECONDS"):
        Settings(lateness_seconds=7 * 86400, dedup_horizon_seconds=7 * 86400 - 1)
    assert Settings(lateness_seconds=86400, dedup_horizon_seconds=86400).dedup_horizon() == (
        dt.timedelta(days=1)
    )


# -- the ledger stage --------------------------------------------------------------


async def test_the_stage_forgets_old_ids_and_a_late_resend_goes_to_the_late_topic() -> None:
    harness = Harness()  # the default policy: 7 days of lateness, a 14-day horizon
    await harness.stage.load_if_needed()
    await harness.stage.handle(line("a") + b"\n" + line("b"), headers(), 0)
    assert harness.stored_ids() == {b"a", b"b"}
    await harness.stage.handle(line("z", "2026-04-01"), headers(), 1)
    assert harness.stored_ids() == {b"z"}  # tombstoned in the changelog
    assert (b"ledger.ids\x00a", None) in harness.table.changelog
    await harness.stage.handle(line("a"), headers(), 2)
    assert harness.count("late", type="lead.created") == 1
    assert harness.count("duplicates", type="lead.created") == 0
    assert len(harness.late.sent) == 1 and harness.accepted() == 3
