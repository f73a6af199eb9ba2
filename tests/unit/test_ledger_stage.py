"""The ledger stage without a broker: a real LedgerOwner and Ledger on real TableMaps, a
dict-backed table, topics that record what they were sent."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from models.events import event_to_json
from models.policy import MetricPolicy
from models.series import compute_points
from sinks.ops_metrics import OpsMetrics, build_ops_metrics
from streams.pipeline.intake_stage import ARRIVAL_HEADER, SOURCE_HEADER
from streams.pipeline.ledger_log import BAND_KEY, log_records
from streams.pipeline.ledger_stage import (
    APPLY_CHUNK_EVENTS,
    LEGACY_MIGRATED,
    NEXT_FACTS_OFFSET,
    LedgerStage,
    TableRecovery,
)
from streams.pipeline.owner import LedgerOwner
from streams.pipeline.state_table import WAL_PREFIX, map_prefix
from tests.unit.builders import lead
from tests.unit.pipeline_fakes import FakeReader, FakeTable, FakeTopic, Lost, Record

IDS = map_prefix("ledger.ids")


def line(event_id: str, day: str = "2026-03-02") -> bytes:
    return event_to_json(lead(event_id, f"L-{event_id}", day)).encode()


class Harness:
    def __init__(self, table: FakeTable | None = None) -> None:
        self.owner = LedgerOwner(MetricPolicy(), "event", "30d", sources=("0",))
        self.table = table or FakeTable()
        self.dead_letters = FakeTopic()
        self.late = FakeTopic()
        self.reader = FakeReader()
        self.recovered = True
        self.legacy: list[Record] = []
        self.ops: OpsMetrics = build_ops_metrics(CollectorRegistry())
        self.recovery = TableRecovery(done=lambda: self.recovered, read_legacy_log=self.legacy_log)
        self.stage = LedgerStage(
            owner=self.owner,
            table=self.table,
            dead_letters=self.dead_letters,
            late=self.late,
            ops=self.ops,
            read_facts=self.reader,
            recovery=self.recovery,
        )

    async def legacy_log(self) -> list[Record]:
        return self.legacy

    def count(self, counter: str, **labels: str) -> float:
        metric = getattr(self.ops, counter)
        return float((metric.labels(**labels) if labels else metric)._value.get())

    def accepted(self) -> int:
        assert self.owner.ledger is not None
        return self.owner.ledger.accepted_count

    def stored_ids(self) -> set[bytes]:
        return {key.removeprefix(IDS) for key in self.table.data if key.startswith(IDS)}


def reloaded(harness: Harness) -> Harness:
    """A new owner on a copy of what the table holds, as after a crash."""
    return Harness(FakeTable(dict(harness.table.data)))


def headers(source: str = "0", arrivals: bytes = b"1700000000000") -> dict[str, bytes]:
    return {SOURCE_HEADER: source.encode(), ARRIVAL_HEADER: arrivals}


async def test_a_message_is_applied_and_its_changes_sent_per_key() -> None:
    harness = Harness()
    await harness.stage.load_if_needed()
    loaded = len(harness.table.changelog)  # the load marks that nothing was migrated
    await harness.stage.handle(line("a") + b"\n" + line("b"), headers(), 7)
    assert harness.owner.ready and harness.accepted() == 2
    keys = [key for key, _value in harness.table.changelog[loaded:]]
    assert keys[0].startswith(WAL_PREFIX)  # the write-ahead record first
    assert not any(key.startswith(WAL_PREFIX) for key in keys[1:])
    assert len(keys) == len(set(keys))  # one record per changed key
    assert harness.stored_ids() == {b"a", b"b"}
    assert harness.owner.arrivals_seconds == [1_700_000_000.0]
    assert harness.stage.expected_offset == 8
    assert harness.stage.facts.get(NEXT_FACTS_OFFSET) == 8

    sent = len(harness.table.changelog)
    await harness.stage.handle(line("a"), headers(), 8)  # a duplicate: counted, not stored
    assert harness.count("duplicates", type="lead.created") == 1
    again = [key for key, _value in harness.table.changelog[sent:]]
    assert not any(key.startswith(IDS) for key in again)
    assert harness.stage.facts.get(NEXT_FACTS_OFFSET) == 9

    taken_over = reloaded(harness)
    await taken_over.stage.load_if_needed()
    assert taken_over.accepted() == 2 and taken_over.stage.expected_offset == 9


async def test_a_large_message_is_applied_a_chunk_at_a_time_and_sent_once() -> None:
    """The loop runs between chunks; the message's changes go out in one flush once it
    is applied, and a ledger loaded from the table gives the same figures."""
    harness = Harness()
    await harness.stage.load_if_needed()
    applied_at_each_flush: list[int] = []
    send = harness.table.log

    def watching(key: bytes, value: bytes | None) -> Any:
        if key.startswith(WAL_PREFIX):
            applied_at_each_flush.append(harness.accepted())
        return send(key, value)

    harness.table.log = watching  # type: ignore[method-assign]
    count = 2 * APPLY_CHUNK_EVENTS + 5
    days = [f"2026-03-{1 + i * 20 // count:02d}" for i in range(count)]  # in time order
    lines = [line(f"e{i}", day) for i, day in enumerate(days)]
    other_work: list[int] = []

    async def meanwhile() -> None:
        while len(other_work) < 10:
            other_work.append(harness.accepted())
            await asyncio.sleep(0)

    loop_work = asyncio.ensure_future(meanwhile())
    await harness.stage.handle(b"\n".join(lines), headers(), 3)
    await loop_work
    assert applied_at_each_flush == [count]
    assert len(set(other_work) & {APPLY_CHUNK_EVENTS, 2 * APPLY_CHUNK_EVENTS}) > 0

    taken_over = reloaded(harness)
    await taken_over.stage.load_if_needed()
    assert taken_over.accepted() == count and taken_over.stage.expected_offset == 4
    assert harness.owner.ledger is not None and taken_over.owner.ledger is not None
    as_of = dt.date(2026, 3, 25)
    assert compute_points(taken_over.owner.ledger, as_of) == compute_points(
        harness.owner.ledger, as_of
    )


async def test_conflicts_and_bad_facts_are_dead_lettered_and_late_ones_sent_on() -> None:
    harness = Harness()
    await harness.stage.handle(line("a", "2026-03-20"), headers(), 0)
    conflicting = event_to_json(lead("a", "L-other", "2026-03-20")).encode()
    too_late = line("old", "2025-01-01")
    await harness.stage.handle(b"\n".join([conflicting, b"{broken", too_late]), headers(), 1)
    assert harness.dead_letters.values == [b"{broken", conflicting]
    reasons = [m.headers["revpulse-reason"] for m in harness.dead_letters.sent]
    assert b"already applied with different content" in reasons[1]
    assert harness.late.values == [too_late]
    assert harness.late.sent[0].headers["revpulse-reason"].startswith(b"later than the allowed")
    assert harness.count("rejected", reason="ledger") == 1
    assert harness.count("conflicting", type="lead.created") == 1
    assert harness.count("late", type="lead.created") == 1


async def test_the_ledger_is_loaded_from_the_table_with_its_band() -> None:
    first = Harness()
    await first.stage.handle(line("a") + b"\n" + line("b"), headers(), 4)
    first.table.data[BAND_KEY] = b"moderate"
    harness = reloaded(first)
    await harness.stage.load_if_needed()
    assert harness.accepted() == 2
    assert harness.owner.band == "moderate"
    assert harness.stage.expected_offset == 5
    assert harness.count("ledger_recovered") == 1
    assert harness.count("rebuilt_events") == 2


async def test_the_recovery_says_what_it_is_doing_until_the_ledger_is_loaded() -> None:
    harness = Harness()
    harness.recovered = False
    assert harness.stage.recovery_problem() == "table recovery in progress"
    harness.recovery.changelog_left = lambda: 1234
    assert harness.stage.recovery_problem() == (
        "table recovery in progress: 1,234 changelog records left to read"
    )
    harness.recovered = True
    seen: list[str | None] = []
    load = harness.owner.load

    def watched(maps: Any) -> Any:
        seen.append(harness.stage.recovery_problem())
        return load(maps)

    harness.owner.load = watched  # type: ignore[method-assign]
    await harness.stage.load_if_needed()
    assert seen == ["loading the ledger state from its table"]
    assert harness.stage.recovery_problem() is None and harness.owner.ready


async def test_a_logged_band_that_is_no_band_is_ignored() -> None:
    harness = Harness(FakeTable({BAND_KEY: b"\xffbogus"}))
    await harness.stage.load_if_needed()
    assert harness.owner.ready and harness.owner.band is None
    assert harness.stage.expected_offset is None


async def test_an_earlier_versions_ledger_log_is_migrated_once() -> None:
    """The ledger-log changelog of every accepted event (before the ledger-state table) is
    applied once; an event in it the ledger cannot hold is dead-lettered."""
    harness = Harness()
    [(first_key, _)] = log_records(0, [line("a")])
    [(second_key, _)] = log_records(6, [line("b")])
    harness.legacy = [
        Record("ledger-log", 0, 0, 0, first_key, line("a") + b"\n" + b'{"not": "an event"}'),
        Record("ledger-log", 0, 1, 0, second_key, line("b")),
        Record("ledger-log", 0, 2, 0, BAND_KEY, b"strong"),
    ]
    await harness.stage.load_if_needed()
    assert harness.accepted() == 2 and harness.stored_ids() == {b"a", b"b"}
    assert harness.stage.expected_offset == 7
    assert harness.stage.facts.get(LEGACY_MIGRATED) == 1
    assert harness.dead_letters.values == [b'{"not": "an event"}']
    reason = harness.dead_letters.sent[0].headers["revpulse-reason"]
    assert reason.startswith(b"in the ledger changelog: ")

    again = reloaded(harness)
    again.legacy = harness.legacy
    await again.stage.load_if_needed()
    assert again.accepted() == 2 and again.dead_letters.values == []  # not migrated twice


async def test_facts_offsets_the_consumer_skipped_are_read_and_applied_first() -> None:
    first = Harness()
    await first.stage.handle(line("a"), headers(), 2)
    harness = reloaded(first)
    harness.reader.records = [
        Record("facts", 0, 3, 0, b"ledger", line("b"), tuple(headers().items())),
        Record("facts", 0, 4, 0, b"ledger", line("a"), tuple(headers().items())),
    ]
    await harness.stage.handle(line("c"), headers(), 5)
    assert harness.reader.asked == [(0, 3, 5)]
    assert harness.accepted() == 3
    assert harness.count("facts_gaps") == 1  # b; a was applied already
    assert harness.stage.expected_offset == 6


async def test_the_changelog_end_the_recovery_missed_is_kept_before_the_load() -> None:
    """Faust's recovery stops at Tansu's reported end (the last batch's base offset + 1):
    the rest of that batch, read directly, is kept in the table and loaded from."""
    first = Harness()
    await first.stage.handle(line("a") + b"\n" + line("b"), headers(), 0)
    first.table.log(BAND_KEY, b"strong")
    changelog = first.table.changelog
    read = len(changelog) // 2  # what the recovery read
    harness = Harness(FakeTable())
    for key, value in changelog[:read]:
        harness.table.keep(key, value, 0)
    harness.table.kept_offsets.clear()

    async def last_batch() -> list[Record]:
        return [
            Record("changelog", 0, offset, 0, key, value)
            for offset, (key, value) in enumerate(changelog)
            if offset >= read - 1
        ]

    harness.recovery.read_changelog_end = last_batch
    await harness.stage.load_if_needed()
    assert harness.table.data == first.table.data
    assert harness.table.kept_offsets == list(range(read - 1, len(changelog)))
    assert harness.accepted() == 2 and harness.owner.band == "strong"
    assert harness.stage.expected_offset == 1


async def test_a_change_the_changelog_did_not_take_is_sent_again_and_nothing_doubles() -> None:
    """A message's write-ahead record was delivered, one of its key records was not: the
    ledger is dropped, loaded again from the table with those changes sent again, and
    the message read again; each event counts once, and a fresh owner agrees."""
    harness = Harness()
    real_log = harness.table.log
    flushes = 0
    failed = False

    def fails_in_the_second_flush(key: bytes, value: bytes | None) -> Any:
        nonlocal flushes, failed
        if key.startswith(WAL_PREFIX):
            flushes += 1
        elif flushes == 2 and not failed:  # the load's flush, then the message's
            failed = True
            return Lost()
        return real_log(key, value)

    harness.table.log = fails_in_the_second_flush  # type: ignore[method-assign]
    lines = [line(f"e{i}") for i in range(2 * APPLY_CHUNK_EVENTS)]
    message = b"\n".join(lines)
    with pytest.raises(ConnectionError):
        await harness.stage.handle(message, headers(), 3)
    assert not harness.owner.ready  # it held changes the table does not
    crashed_here = reloaded(harness)  # as a worker killed at this moment

    harness.reader.records = [
        Record("facts", 0, 3, 0, b"ledger", message, tuple(headers().items()))
    ]
    await harness.stage.handle(line("z"), headers(), 4)  # the agent goes on past it
    assert harness.reader.asked == [(0, 3, 4)]
    assert harness.accepted() == 2 * APPLY_CHUNK_EVENTS + 1
    assert harness.count("duplicates", type="lead.created") == 2 * APPLY_CHUNK_EVENTS
    assert len(harness.stored_ids()) == 2 * APPLY_CHUNK_EVENTS + 1

    await crashed_here.stage.load_if_needed()
    assert crashed_here.accepted() == 2 * APPLY_CHUNK_EVENTS  # the message's changes again
    assert len(crashed_here.stored_ids()) == 2 * APPLY_CHUNK_EVENTS
    fresh = reloaded(harness)
    await fresh.stage.load_if_needed()
    assert fresh.accepted() == 2 * APPLY_CHUNK_EVENTS + 1
