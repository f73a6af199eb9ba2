"""The ledger stage without a broker: a real LedgerOwner and Ledger, a dict-backed table,
topics that record what they were sent."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from models.events import event_to_json
from models.policy import MetricPolicy
from sinks.ops_metrics import OpsMetrics, build_ops_metrics
from streams.pipeline.intake_stage import ARRIVAL_HEADER, SOURCE_HEADER
from streams.pipeline.ledger_log import BAND_KEY, log_records
from streams.pipeline.ledger_stage import APPLY_CHUNK_EVENTS, LedgerStage
from streams.pipeline.owner import LedgerOwner
from tests.unit.builders import lead
from tests.unit.pipeline_fakes import FakeReader, FakeTable, FakeTopic, Lost, Record


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
        self.ops: OpsMetrics = build_ops_metrics(CollectorRegistry())
        self.stage = LedgerStage(
            owner=self.owner,
            table=self.table,
            dead_letters=self.dead_letters,
            late=self.late,
            ops=self.ops,
            read_facts=self.reader,
            recovery_done=lambda: self.recovered,
        )

    def count(self, counter: str, **labels: str) -> float:
        metric = getattr(self.ops, counter)
        return float((metric.labels(**labels) if labels else metric)._value.get())


def headers(source: str = "0", arrivals: bytes = b"1700000000000") -> dict[str, bytes]:
    return {SOURCE_HEADER: source.encode(), ARRIVAL_HEADER: arrivals}


async def test_a_message_is_applied_and_its_accepted_events_logged() -> None:
    harness = Harness()
    await harness.stage.handle(line("a") + b"\n" + line("b"), headers(), 7)
    assert harness.owner.ready and harness.owner.ledger is not None
    assert harness.owner.ledger.accepted_count == 2
    [(key, record)] = harness.table.changelog
    assert key.startswith(b"00000000000000000007-")
    assert record == line("a") + b"\n" + line("b")
    assert harness.table.data[key] == record
    assert harness.owner.arrivals_seconds == [1_700_000_000.0]
    assert harness.stage.expected_offset == 8

    await harness.stage.handle(line("a"), headers(), 8)  # a duplicate: counted, not logged
    assert len(harness.table.changelog) == 1
    assert harness.count("duplicates", type="lead.created") == 1


async def test_a_large_message_is_applied_and_logged_a_chunk_at_a_time() -> None:
    """The loop runs between chunks; a rebuild from the chunks' records, in key order,
    gives the same ledger, and each chunk's record is queued before anything else runs."""
    harness = Harness()
    applied_when_logged: list[int] = []
    send = harness.table.log

    def watching(key: bytes, value: bytes) -> Any:
        assert harness.owner.ledger is not None
        applied_when_logged.append(harness.owner.ledger.accepted_count)
        return send(key, value)

    harness.table.log = watching  # type: ignore[method-assign]
    count = 2 * APPLY_CHUNK_EVENTS + 5
    lines = [line(f"e{i}") for i in range(count)]
    await harness.stage.handle(b"\n".join(lines), headers(), 3)
    assert applied_when_logged == [APPLY_CHUNK_EVENTS, 2 * APPLY_CHUNK_EVENTS, count]
    keys = [key for key, _record in harness.table.changelog]
    assert keys == sorted(keys) and all(k.startswith(b"00000000000000000003-") for k in keys)
    assert b"\n".join(record for _key, record in harness.table.changelog) == b"\n".join(lines)

    rebuilt = Harness(FakeTable(dict(harness.table.data)))
    await rebuilt.stage.rebuild_if_needed()
    assert rebuilt.owner.ledger is not None and rebuilt.owner.ledger.accepted_count == count
    assert rebuilt.stage.expected_offset == 4


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


async def test_the_ledger_is_rebuilt_from_the_table_with_its_band() -> None:
    table = FakeTable()
    for key, record in log_records(4, [line("a"), line("b")]):
        table.data[key] = record
    table.data[BAND_KEY] = b"moderate"
    harness = Harness(table)
    await harness.stage.rebuild_if_needed()
    assert harness.owner.ledger is not None and harness.owner.ledger.accepted_count == 2
    assert harness.owner.band == "moderate"
    assert harness.stage.expected_offset == 5
    assert harness.count("ledger_recovered") == 1
    assert harness.count("rebuilt_events") == 2


class WatchedData(dict[bytes, bytes]):
    """Table data that calls ``watch`` on every read of a value."""

    watch: Any = None

    def __getitem__(self, key: bytes) -> bytes:
        self.watch()
        return super().__getitem__(key)


async def test_the_recovery_says_what_it_is_doing_until_the_ledger_is_rebuilt() -> None:
    data = WatchedData()
    for offset in (1, 2, 3):
        for key, record in log_records(offset, [line(f"e{offset}")]):
            data[key] = record
    harness = Harness(FakeTable(data))
    harness.recovered = False
    assert harness.stage.recovery_problem() == "table recovery in progress"
    harness.stage.changelog_left = lambda: 1234
    assert harness.stage.recovery_problem() == (
        "table recovery in progress: 1,234 changelog records left to read"
    )
    harness.recovered = True
    seen: list[str | None] = []
    data.watch = lambda: seen.append(harness.stage.recovery_problem())
    await harness.stage.rebuild_if_needed()
    assert seen == [
        f"rebuilding the ledger from its table: record {done} of 3" for done in range(3)
    ]
    assert harness.stage.recovery_problem() is None and harness.owner.ready


async def test_a_logged_band_that_is_no_band_is_ignored() -> None:
    harness = Harness(FakeTable({BAND_KEY: b"\xffbogus"}))
    await harness.stage.rebuild_if_needed()
    assert harness.owner.ready and harness.owner.band is None
    assert harness.stage.expected_offset is None


async def test_a_logged_event_the_ledger_cannot_hold_is_dead_lettered_and_dropped() -> None:
    table = FakeTable()
    [(key, _record)] = log_records(0, [line("a")])
    table.data[key] = line("a") + b"\n" + b'{"not": "an event"}'
    harness = Harness(table)
    await harness.stage.rebuild_if_needed()
    assert harness.owner.ledger is not None and harness.owner.ledger.accepted_count == 1
    assert harness.dead_letters.values == [b'{"not": "an event"}']
    assert (
        harness.dead_letters.sent[0]
        .headers["revpulse-reason"]
        .startswith(b"in the ledger changelog: ")
    )
    assert table.data[key] == line("a")
    assert table.changelog == [(key, line("a"))]  # the next rebuild does not meet it again
    assert harness.owner.rebuild_rejects == []


async def test_facts_offsets_the_consumer_skipped_are_read_and_applied_first() -> None:
    table = FakeTable()
    for key, record in log_records(2, [line("a")]):
        table.data[key] = record
    harness = Harness(table)
    harness.reader.records = [
        Record("facts", 0, 3, 0, b"ledger", line("b"), tuple(headers().items())),
        Record("facts", 0, 4, 0, b"ledger", line("a"), tuple(headers().items())),
    ]
    await harness.stage.handle(line("c"), headers(), 5)
    assert harness.reader.asked == [(0, 3, 5)]
    assert harness.owner.ledger is not None and harness.owner.ledger.accepted_count == 3
    assert harness.count("facts_gaps") == 1  # b; a was logged already
    assert harness.stage.expected_offset == 6


async def test_the_changelog_end_the_recovery_missed_is_kept_before_the_rebuild() -> None:
    """Faust's recovery stops at Tansu's reported end (the last batch's base offset + 1):
    the rest of that batch, read directly, is kept in the table and rebuilt from."""
    [(first_key, first)] = log_records(0, [line("a")])
    [(second_key, second)] = log_records(1, [line("b")])
    harness = Harness(FakeTable({first_key: first}))  # the recovery read offset 0 only

    async def last_batch() -> list[Record]:
        return [
            Record("changelog", 0, 0, 0, first_key, first),
            Record("changelog", 0, 1, 0, second_key, second),
            Record("changelog", 0, 2, 0, BAND_KEY, b"strong"),
        ]

    harness.stage.read_changelog_end = last_batch
    await harness.stage.rebuild_if_needed()
    assert harness.table.data == {first_key: first, second_key: second, BAND_KEY: b"strong"}
    assert harness.table.kept_offsets == [0, 1, 2]
    assert harness.owner.ledger is not None and harness.owner.ledger.accepted_count == 2
    assert harness.owner.band == "strong"
    assert harness.stage.expected_offset == 2


async def test_a_record_the_changelog_did_not_take_is_applied_and_logged_again() -> None:
    """The ledger applied a chunk whose record was never delivered: it is dropped, rebuilt
    from what the log holds, and the message read again, so each event is logged once."""
    harness = Harness()
    real_log = harness.table.log
    calls = 0

    def second_send_fails(key: bytes, value: bytes) -> Any:
        nonlocal calls
        calls += 1
        return Lost() if calls == 2 else real_log(key, value)

    harness.table.log = second_send_fails  # type: ignore[method-assign]
    lines = [line(f"e{i}") for i in range(2 * APPLY_CHUNK_EVENTS)]
    message = b"\n".join(lines)
    with pytest.raises(ConnectionError):
        await harness.stage.handle(message, headers(), 3)
    assert not harness.owner.ready  # it held events its log does not
    assert len(harness.table.changelog) == 1  # the first chunk's record

    harness.table.log = real_log  # type: ignore[method-assign]
    harness.reader.records = [
        Record("facts", 0, 3, 0, b"ledger", message, tuple(headers().items()))
    ]
    await harness.stage.handle(line("z"), headers(), 4)  # the agent goes on past it
    assert harness.reader.asked == [(0, 3, 4)]
    assert harness.owner.ledger is not None
    assert harness.owner.ledger.accepted_count == 2 * APPLY_CHUNK_EVENTS + 1
    logged = [event for _key, record in harness.table.changelog for event in record.split(b"\n")]
    assert sorted(logged) == sorted([*lines, line("z")])  # each event logged exactly once
