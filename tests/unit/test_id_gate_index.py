"""The id gate forgets ids by day: a pass reads the index (``<prefix>.id_days``) only as
far as its forgettable entries, forgets the ids the scan of every id forgot, at the
same cutoffs; stores without the index are indexed once, resumably; and a lost flush
leaves the ids and their index in step."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest

from bench.gate_cost import CountingMaps, ScanningGate, make_stream
from models.dedup import ID_DAY, SEEN_ID, SeenId, day_key, split_day_key
from models.events import Event, parse_event
from models.id_gate import (
    FORGOTTEN_BEFORE,
    INDEX_CURSOR,
    INDEXED,
    SCAN_CURSOR,
    IdGate,
    Outcome,
)
from models.keyed import MemoryMaps
from models.policy import MetricPolicy
from streams.pipeline.gate_stage import STAMP_HEADER
from streams.pipeline.partitioned_stage import partition_prefix
from streams.pipeline.prefixed_table import PrefixedTable
from streams.pipeline.state_table import TableMaps
from tests.unit.builders import raw_event, spend
from tests.unit.pipeline_fakes import FakeTable
from tests.unit.test_gate_stage import Gates, by_id, line

DAY = dt.timedelta(days=1)
POLICY = MetricPolicy(lateness=DAY, dedup_horizon=3 * DAY)


def spend_on(event_id: str, day: str, amount: str = "10") -> Event:
    return spend(event_id, "organic", amount, day)


def spend_at(event_id: str, when: dt.datetime, amount: str = "10") -> Event:
    data = {"channel": "organic", "amount": amount, "currency": "USD"}
    return parse_event(raw_event("spend.recorded", event_id, when.isoformat(), data))


def keys(maps: Any, name: str, prefix: str = "gate") -> list[str]:
    """The keys of ``<prefix>.<name>``: ``ids`` or ``id_days``."""
    codec = ID_DAY if name == "id_days" else SEEN_ID
    return sorted(key for key, _ in maps.open(f"{prefix}.{name}", codec).items())


def index_of(maps: Any) -> list[str]:
    return keys(maps, "id_days")


def assert_in_step(maps: Any, prefix: str = "gate") -> None:
    """Every remembered id has its day's index entry, and every entry its id."""
    ids = maps.open(f"{prefix}.ids", SEEN_ID)
    expected = sorted(day_key(seen.day, event_id) for event_id, seen in ids.items())
    assert sorted(key for key, _ in maps.open(f"{prefix}.id_days", ID_DAY).items()) == expected


# -- the index ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "event_id"),
    [(dt.date(2024, 3, 1), "a"), (dt.date(1, 1, 1), "x/y"), (dt.date(9999, 12, 31), "")],
)
def test_an_index_key_holds_its_day_and_id(day: dt.date, event_id: str) -> None:
    assert split_day_key(day_key(day, event_id)) == (day, event_id)


def test_index_keys_sort_by_day_whatever_the_ids() -> None:
    days = [dt.date(999, 12, 31), dt.date(1000, 1, 1), dt.date(2024, 2, 29), dt.date(2024, 3, 1)]
    keyed = [day_key(day, event_id) for day in days for event_id in ("~~", "0", "a")]
    assert [split_day_key(key)[0] for key in sorted(keyed)] == sorted(
        d for d in days for _ in "abc"
    )


def test_a_pass_reads_the_index_only_up_to_its_first_entry_not_forgettable() -> None:
    maps = CountingMaps(MemoryMaps())
    gate = IdGate(POLICY, maps=maps, prefix="gate")
    for number in range(10):
        gate.admit(spend_on(f"old{number}", "2024-03-01"))
    for number in range(30):
        gate.admit(spend_on(f"new{number}", "2024-03-09"))
    maps.reads[0] = 0
    assert [gate.forget_ids(4) for _ in range(4)] == [4, 4, 2, 0]  # cutoff 03-06 noon
    # 4 + 4 + 4 entries (the third slice ends at new0), then no pass is due
    assert maps.reads[0] == 12 and not gate.pass_under_way
    assert keys(maps, "ids") == sorted(f"new{n}" for n in range(30))
    assert_in_step(maps)
    gate.admit(spend_on("later", "2024-03-10"))  # cutoff 03-07 noon: half a horizon? no
    assert gate.forget_ids(1000) == 0 and maps.reads[0] == 12  # nothing read at all
    # the scan of the release before read every id in that pass
    scanned = CountingMaps(MemoryMaps())
    scanning = ScanningGate(POLICY, maps=scanned, prefix="gate")
    for event in [spend_on(f"old{n}", "2024-03-01") for n in range(10)] + [
        spend_on(f"new{n}", "2024-03-09") for n in range(30)
    ]:
        scanning.admit(event)
    scanned.reads[0] = 0
    while scanning.forget_ids(4) or scanning.pass_under_way:
        pass
    assert scanned.reads[0] == 40 and scanning.forgotten_count == 10


def test_remember_and_forget_write_the_index_with_the_ids() -> None:
    maps = MemoryMaps(encoded=True)
    gate = IdGate(POLICY, maps=maps, prefix="gate")
    gate.admit(spend_on("a", "2024-03-01"))
    gate.restore(spend_on("b", "2024-03-02"))
    assert index_of(maps) == ["2024-03-01/a", "2024-03-02/b"]
    assert gate.admit(spend_on("a", "2024-03-05", "11")) is Outcome.CONFLICT  # found by id
    gate.admit(spend_on("c", "2024-03-06"))  # cutoff 03-03 noon
    assert gate.forget_ids(100) == 2
    assert index_of(maps) == ["2024-03-06/c"] and keys(maps, "ids") == ["c"]


# -- the same ids forgotten as by the scan of every id ------------------------------------


def generated(seed: int, events: int) -> list[tuple[Event, str]]:
    """Events in rough time order from two sources, some re-sent (the same, changed, or
    much later), some late."""
    rng = random.Random(seed)
    start = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    made: list[tuple[Event, str]] = []
    for number in range(events):
        when = start + dt.timedelta(hours=number * 2 + rng.randint(-30, 30))
        source = rng.choice(("crm", "billing"))
        roll = rng.random()
        if made and roll < 0.25:  # a re-send of an earlier event, as it was or changed
            event, _ = rng.choice(made)
            amount = "10" if roll < 0.15 else str(rng.randint(11, 99))
            later = event.occurred_at + rng.choice((dt.timedelta(0), 5 * DAY))
            made.append((spend_at(event.event_id, later, amount), source))
        else:
            made.append((spend_at(f"e{number:04}", when), source))
    return made


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("horizon_days", [1, 3, 10])
def test_the_index_forgets_the_ids_the_scan_forgot_with_the_same_outcomes(
    seed: int, horizon_days: int
) -> None:
    policy = MetricPolicy(lateness=DAY, dedup_horizon=horizon_days * DAY)
    sources = ("crm", "billing")
    indexed, scanned = MemoryMaps(encoded=True), MemoryMaps(encoded=True)
    gate = IdGate(policy, sources, indexed, prefix="gate")
    scanning = ScanningGate(policy, sources, scanned, prefix="gate")
    outcomes: set[Outcome] = set()
    for number, (event, source) in enumerate(generated(seed, 600)):
        outcome = gate.admit(event, source)
        assert scanning.admit(event, source) is outcome, (number, event.event_id)
        outcomes.add(outcome)
        if number % 7 == 0:  # a pass is done in one call: the scan's too
            assert gate.forget_ids(10_000) == scanning.forget_ids(10_000)
            assert keys(indexed, "ids") == keys(scanned, "ids")
            assert indexed.maps["gate.marks"].get(FORGOTTEN_BEFORE) == scanned.maps[
                "gate.marks"
            ].get(FORGOTTEN_BEFORE)
    assert outcomes == set(Outcome)  # every outcome was compared
    assert gate.forgotten_count == scanning.forgotten_count > 0
    assert_in_step(indexed)


def test_the_bench_streams_agree_on_a_longer_run() -> None:
    policy = MetricPolicy(lateness=7 * DAY, dedup_horizon=14 * DAY)
    stream = make_stream(3000, 60, seed=3)
    gate, scanning = IdGate(policy), ScanningGate(policy)
    for start in range(0, len(stream), 100):
        for event in stream[start : start + 100]:
            assert gate.admit(event) is scanning.admit(event)
        gate.forget_ids(10_000)
        scanning.forget_ids(10_000)
    assert gate.forgotten_count == scanning.forgotten_count > 2000


# -- stores without the index ------------------------------------------------------------


def scanned_store(events: list[tuple[Event, str]], limit: int) -> MemoryMaps:
    """Maps as the release before left them: its gate's ids, no index, and its pass
    stopped ``limit`` ids in (its cursor stored)."""
    maps = MemoryMaps(encoded=True)
    before = ScanningGate(POLICY, ("crm",), maps, prefix="gate")
    for event, source in events:
        before.admit(event, source)
    before.forget_ids(limit)
    return maps


OLD_STORE = [
    *[(spend_on(f"a{n}", "2024-03-01"), "crm") for n in range(6)],
    *[(spend_on(f"b{n}", "2024-03-03"), "crm") for n in range(6)],
    (spend_on("m", "2024-03-06"), "crm"),  # cutoff 03-03 noon: the a's are forgettable
]


def test_a_store_without_the_index_is_indexed_in_slices_across_restarts() -> None:
    maps = scanned_store(OLD_STORE, limit=4)  # the release before forgot a0..a3
    assert maps.maps["gate.forgetting"].get(SCAN_CURSOR) == ("a3",)
    assert index_of(maps) == []
    gate = IdGate(POLICY, ("crm",), maps, prefix="gate")
    assert gate.pass_under_way
    assert gate.forget_ids(4) == 2  # a4, a5 forgotten by the stored cutoff; b0, b1 indexed
    assert maps.maps["gate.forgetting"].get(INDEX_CURSOR) == ("b1",)
    gate.admit(spend_on("n", "2024-03-06"), "crm")  # indexed when remembered
    again = IdGate(POLICY, ("crm",), maps, prefix="gate")  # a restart goes on from b1
    assert again.forget_ids(4) == 0
    assert maps.maps["gate.forgetting"].get(INDEX_CURSOR) == ("b5",)
    assert again.forget_ids(4) == 0  # m, n: fewer than 4, so the indexing is done
    forgetting = maps.maps["gate.forgetting"]
    assert forgetting.get(INDEXED) == () and forgetting.get(INDEX_CURSOR) is None
    assert forgetting.get(SCAN_CURSOR) is None  # the release before's pass is done too
    assert_in_step(maps)
    assert again.forgotten_count == 6
    assert keys(maps, "ids") == ["b0", "b1", "b2", "b3", "b4", "b5", "m", "n"]
    again.admit(spend_on("z", "2024-03-08"), "crm")  # cutoff 03-05 noon: a pass is due
    assert again.forget_ids(100) == 6 and keys(maps, "ids") == ["m", "n", "z"]
    assert again.admit(spend_on("b0", "2024-03-03"), "crm") is Outcome.LATE
    assert again.admit(spend_on("m", "2024-03-06"), "crm") is Outcome.DUPLICATE


def test_ids_without_a_day_wait_for_a_mark_to_be_dated_by() -> None:
    maps = MemoryMaps(encoded=True)
    ids = maps.open("gate.ids", SEEN_ID)
    for event_id in ("u1", "u2"):  # stored with no day, and no mark stored
        ids.put(event_id, SeenId(bytes(8), None))
    gate = IdGate(POLICY, ("crm",), maps, prefix="gate")
    assert gate.forget_ids(100) == 0 and gate.pass_under_way
    assert index_of(maps) == []
    gate.advance("crm", dt.datetime(2024, 3, 5, 12, tzinfo=dt.UTC))
    assert gate.forget_ids(100) == 0 and not gate.pass_under_way
    assert index_of(maps) == ["2024-03-05/u1", "2024-03-05/u2"]
    assert ids.get("u1") == SeenId(bytes(8), dt.date(2024, 3, 5))
    gate.advance("crm", dt.datetime(2024, 3, 9, 12, tzinfo=dt.UTC))  # cutoff 03-06 noon
    assert gate.forget_ids(100) == 2 and index_of(maps) == []


def test_a_fresh_gate_needs_no_indexing() -> None:
    maps = CountingMaps(MemoryMaps())
    gate = IdGate(POLICY, maps=maps, prefix="gate")
    assert maps.reads[0] == 0  # it found no id when made
    gate.admit(spend_on("a", "2024-03-01"))
    assert gate.forget_ids(100) == 0  # cutoff 02-27 noon
    assert maps.reads[0] == 1  # no id read to index: the pass read a's entry and stopped
    assert maps.maps.maps["gate.forgetting"].get(INDEXED) == ()


# -- a lost flush ------------------------------------------------------------------------


def gate_maps(table: FakeTable) -> TableMaps:
    """The gate's maps as a new owner reads them: the table, and the writes of a flush
    cut short after its wal (sent again by the next flush)."""
    maps = TableMaps(PrefixedTable(table, partition_prefix(0)))
    maps.recover()
    return maps


def marks(day: str) -> bytes:
    return f"0={day}T12:00:00+00:00,1={day}T12:00:00+00:00".encode()


MESSAGES = [
    ([line("a", "2026-03-02"), line("b", "2026-03-02")], "2026-03-02"),
    ([line("c", "2026-03-10")], "2026-03-10"),
    ([line("d", "2026-03-20")], "2026-03-20"),  # cutoff 03-06 noon: a and b go
    ([line("e", "2026-04-10"), line("a", "2026-03-02")], "2026-04-10"),  # c, d go; a late
    ([line("f", "2026-04-11"), line("e", "2026-04-10")], "2026-04-11"),
]


class FlakyTable(FakeTable):
    """Loses the ``lose``-th record sent to its changelog (counting from 0)."""

    def __init__(self, lose: int) -> None:
        super().__init__()
        self.lose, self.sent_records = lose, 0

    def log(self, key: bytes, value: bytes | None) -> Any:
        self.failures = int(self.sent_records == self.lose)
        self.sent_records += 1
        return super().log(key, value)


async def feed(gates: Gates) -> int:
    """Every message, each one given again after a failed flush; returns the failures."""
    failed = 0
    for offset, (lines, day) in enumerate(MESSAGES):
        value, headers = by_id(lines, marks=marks(day))
        try:
            await gates.stage.handle(0, value, headers, offset)
        except ConnectionError:
            failed += 1
            await gates.stage.handle(0, value, headers, offset)  # read from the table again
    return failed


def sent(gates: Gates) -> dict[bytes, bytes | None]:
    """What the gate sent on, by stamp (a message sent again goes under its stamp)."""
    return {m.headers[STAMP_HEADER]: m.value for m in gates.facts.sent}


async def clean_run() -> Gates:
    gates = Gates()
    assert await feed(gates) == 0
    return gates


async def test_without_a_lost_flush_the_gate_forgets_as_expected() -> None:
    gates = await clean_run()
    maps = gate_maps(gates.table)
    assert keys(maps, "ids") == ["e", "f"] and index_of(maps) == ["2026-04-10/e", "2026-04-11/f"]
    assert gates.count("gate_admitted") == 6
    assert isinstance(gates.table, FakeTable) and len(gates.table.changelog) == 51


@pytest.mark.parametrize("lose", range(0, 51, 2))  # a clean run sends 51 records
async def test_a_lost_flush_leaves_the_ids_and_their_index_in_step(lose: int) -> None:
    gates = Gates(FlakyTable(lose))
    assert await feed(gates) == 1
    for maps in (gates.stage.parts[0].maps, gate_maps(gates.table)):  # the live part, a new owner
        assert_in_step(maps)
        assert keys(maps, "ids") == ["e", "f"]
    assert sent(gates) == sent(await clean_run())  # decided as without the crash
