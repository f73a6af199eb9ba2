"""The id gate stage without a broker: real IdGates on real TableMaps over a dict-backed
table, and the real ledger stage downstream, so that exactly-once across the hop is
checked end to end: a crash between the forward and the gate's flush sends the same
stamp again, and the ledger applies it once."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from models.events import event_to_json
from models.policy import MetricPolicy
from sinks.ops_metrics import OpsMetrics, build_ops_metrics
from streams.pipeline.gate_stage import STAMP_HEADER, GateStage, partition_prefix
from streams.pipeline.intake_stage import ARRIVAL_HEADER, MARKS_HEADER, SOURCES_HEADER
from streams.pipeline.ledger_stage import LedgerStage, TableRecovery
from streams.pipeline.owner import LedgerOwner
from tests.unit.builders import lead
from tests.unit.pipeline_fakes import FakeReader, FakeTable, FakeTopic, Record

SOURCES = ("0", "1")


def line(event_id: str, day: str = "2026-03-02", lead_id: str | None = None) -> bytes:
    return event_to_json(lead(event_id, lead_id or f"L-{event_id}", day)).encode()


def by_id(
    lines: list[bytes], sources: list[str] | None = None, marks: bytes | None = None
) -> tuple[bytes, dict[str, bytes]]:
    """A by-id message as the intake sends it."""
    sources = sources or ["0"] * len(lines)
    headers = {
        SOURCES_HEADER: ",".join(sources).encode(),
        ARRIVAL_HEADER: b",".join(b"1700000000000" for _ in lines),
    }
    if marks is not None:
        headers[MARKS_HEADER] = marks
    return b"\n".join(lines), headers


class Gates:
    """The gate stage on a table, sending to a facts topic."""

    def __init__(self, table: FakeTable | None = None, flush_every_messages: int = 1) -> None:
        self.table = table or FakeTable()
        self.facts = FakeTopic()
        self.dead_letters = FakeTopic()
        self.late = FakeTopic()
        self.reader = FakeReader()
        self.ops: OpsMetrics = build_ops_metrics(CollectorRegistry())
        self.stage = GateStage(
            policy=MetricPolicy(),
            sources=SOURCES,
            table_for=lambda _partition: self.table,
            facts=self.facts,
            dead_letters=self.dead_letters,
            late=self.late,
            ops=self.ops,
            read_by_id=self.reader,
            recovery_done=lambda: True,
            read_changelog_end=self.no_records,
            flush_every_messages=flush_every_messages,
        )

    async def no_records(self, _partition: int) -> list[Record]:
        return []

    def count(self, counter: str, **labels: str) -> float:
        metric = getattr(self.ops, counter)
        return float((metric.labels(**labels) if labels else metric)._value.get())


class Ledger:
    """The ledger stage downstream, fed what the gates sent."""

    def __init__(self) -> None:
        self.owner = LedgerOwner(MetricPolicy(), "event", "30d", sources=SOURCES)
        self.table = FakeTable()
        self.ops: OpsMetrics = build_ops_metrics(CollectorRegistry())
        self.stage = LedgerStage(
            owner=self.owner, table=self.table, dead_letters=FakeTopic(), late=FakeTopic(),
            ops=self.ops, read_facts=FakeReader(), recovery=TableRecovery(done=lambda: True),
        )  # fmt: skip
        self.offset = 0

    async def feed(self, facts: FakeTopic) -> None:
        for sent in facts.sent[self.offset :]:
            await self.stage.handle(sent.value or b"", sent.headers, self.offset)
            self.offset += 1

    def accepted(self) -> int:
        assert self.owner.ledger is not None
        return self.owner.ledger.accepted_count


async def test_admitted_events_go_on_stamped_and_repeats_are_counted_not_sent() -> None:
    gates = Gates()
    value, headers = by_id([line("a"), line("b"), line("a")])
    await gates.stage.handle(2, value, headers, 5)
    [sent] = gates.facts.sent
    assert sent.value == line("a") + b"\n" + line("b")
    assert sent.headers[STAMP_HEADER] == b"2:5"
    assert sent.headers[ARRIVAL_HEADER] == b"1700000000000,1700000000000"
    assert gates.count("duplicates", type="lead.created") == 1
    assert gates.count("gate_admitted") == 2
    assert gates.count("gate_partitions") == 1

    changed = line("b").replace(b"L-b", b"L-other")
    value, headers = by_id([changed])
    await gates.stage.handle(2, value, headers, 6)
    assert len(gates.facts.sent) == 1  # nothing admitted: nothing sent
    [dead] = gates.dead_letters.sent
    assert dead.value == changed and b"already applied" in dead.headers["revpulse-reason"]


async def test_a_message_applied_before_is_skipped_and_a_skipped_one_read_directly() -> None:
    gates = Gates()
    value, headers = by_id([line("a")])
    await gates.stage.handle(0, value, headers, 0)
    await gates.stage.handle(0, value, headers, 0)  # redelivered after a rebalance
    assert len(gates.facts.sent) == 1

    missed, missed_headers = by_id([line("m")])
    gates.reader.records = [Record("by-id", 0, 1, 0, None, missed, list(missed_headers.items()))]
    value, headers = by_id([line("c")])
    await gates.stage.handle(0, value, headers, 2)
    assert gates.reader.asked == [(0, 1, 2)]
    assert [m.headers[STAMP_HEADER] for m in gates.facts.sent] == [b"0:0", b"0:1", b"0:2"]


async def test_lateness_is_judged_by_the_marks_every_source_sent() -> None:
    gates = Gates()
    marks = b"0=2026-03-10T00:00:00+00:00,1=2026-03-09T00:00:00+00:00"
    value, headers = by_id([], marks=marks)
    await gates.stage.handle(1, value, headers, 0)  # no event of its own: the marks only
    value, headers = by_id([line("old", "2026-03-01"), line("new", "2026-03-09")])
    await gates.stage.handle(1, value, headers, 1)
    [sent] = gates.facts.sent
    assert sent.value == line("new", "2026-03-09")
    assert [m.value for m in gates.late.sent] == [line("old", "2026-03-01")]
    assert gates.count("late", type="lead.created") == 1


async def test_partitions_keep_their_state_apart_on_one_table() -> None:
    gates = Gates()
    value, headers = by_id([line("a")])
    await gates.stage.handle(0, value, headers, 0)
    await gates.stage.handle(1, value, headers, 0)  # another partition: its own offsets
    assert [m.headers[STAMP_HEADER] for m in gates.facts.sent] == [b"0:0", b"1:0"]
    assert any(key.startswith(partition_prefix(0)) for key in gates.table.data)
    assert any(key.startswith(partition_prefix(1)) for key in gates.table.data)


async def test_a_crash_between_forward_and_flush_sends_the_same_stamp_once_more() -> None:
    gates, ledger = Gates(), Ledger()
    value, headers = by_id([line("a"), line("b")])
    await gates.stage.handle(0, value, headers, 0)
    gates.table.failures = 1  # the next flush's first record never reaches the changelog
    value, headers = by_id([line("c")])
    with pytest.raises(ConnectionError):
        await gates.stage.handle(0, value, headers, 1)
    assert [m.headers[STAMP_HEADER] for m in gates.facts.sent] == [b"0:0", b"0:1"]

    # a new owner of the partition, on what the changelog holds: the message again
    taken_over = Gates(FakeTable(dict(gates.table.data)))
    taken_over.facts = gates.facts
    taken_over.stage.facts = gates.facts
    await taken_over.stage.handle(0, value, headers, 1)
    stamps = [m.headers[STAMP_HEADER] for m in gates.facts.sent]
    assert stamps == [b"0:0", b"0:1", b"0:1"]  # sent again, under the same stamp
    assert gates.facts.sent[1].value == gates.facts.sent[2].value

    await ledger.feed(gates.facts)
    assert ledger.accepted() == 3  # a, b, c: the repeat skipped
    value, headers = by_id([line("c"), line("d")])
    await taken_over.stage.handle(0, value, headers, 2)  # c is known to the gate now
    await ledger.feed(gates.facts)
    assert ledger.accepted() == 4


def recorded(partition: int, offset: int, lines: list[bytes]) -> Record:
    """A by-id message as read directly from the topic."""
    value, headers = by_id(lines)
    return Record("by-id", partition, offset, 0, None, value, list(headers.items()))


async def test_changes_are_flushed_every_few_messages_and_a_takeover_reads_the_rest() -> None:
    gates, ledger = Gates(flush_every_messages=3), Ledger()
    messages = [[line("a"), line("b")], [line("c")], [line("a"), line("d")]]
    for offset, lines in enumerate(messages[:2]):
        await gates.stage.handle(0, *by_id(lines), offset)
    assert gates.table.changelog == []  # two messages: not flushed yet
    assert [m.headers[STAMP_HEADER] for m in gates.facts.sent] == [b"0:0", b"0:1"]

    # the worker dies; Faust had acked both, so the next owner is given offset 2 first
    taken_over = Gates(FakeTable(dict(gates.table.data)), flush_every_messages=3)
    taken_over.stage.facts = gates.facts
    taken_over.reader.records = [recorded(0, n, lines) for n, lines in enumerate(messages)]
    await taken_over.stage.handle(0, *by_id(messages[2]), 2)
    assert taken_over.reader.asked == [(0, 0, 2)]
    stamps = [m.headers[STAMP_HEADER] for m in gates.facts.sent]
    assert stamps == [b"0:0", b"0:1", b"0:0", b"0:1", b"0:2"]
    assert taken_over.table.changelog != []  # three messages: flushed
    await ledger.feed(gates.facts)
    assert ledger.accepted() == 4  # a, b, c, d: the repeats skipped by their stamps


async def test_an_idle_gate_is_flushed_by_the_timer() -> None:
    gates = Gates(flush_every_messages=100)
    await gates.stage.handle(0, *by_id([line("a")]), 0)
    await gates.stage.flush_idle()  # not old enough yet
    assert gates.table.changelog == []
    gates.stage.parts[0].unflushed_since -= 60
    await gates.stage.flush_idle()
    assert gates.table.changelog != [] and gates.stage.parts[0].unflushed == 0


async def test_a_forward_the_broker_never_took_is_decided_and_sent_again() -> None:
    gates, ledger = Gates(flush_every_messages=100), Ledger()
    await gates.stage.handle(0, *by_id([line("a")]), 0)
    gates.facts.failures = 1
    with pytest.raises(ConnectionError):
        await gates.stage.handle(0, *by_id([line("b")]), 1)
    gates.reader.records = [recorded(0, 0, [line("a")]), recorded(0, 1, [line("b")])]
    await gates.stage.handle(0, *by_id([line("c")]), 2)  # the gate is read again: b too
    assert gates.reader.asked == [(0, 0, 2)]
    await ledger.feed(gates.facts)
    assert ledger.accepted() == 3
