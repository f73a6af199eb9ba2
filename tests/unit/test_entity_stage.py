"""The entity stage without a broker: id gates sending to two entity partitions, the
entity stage handing contracts to their leads' and accounts' partitions, and the ledger
stage adding up the changes; real state on real TableMaps over dict-backed tables. The
figures equal one ledger's, and a crash between a send and the flush (a message applied
again, its sends repeated under the same stamps) changes nothing."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

from prometheus_client import CollectorRegistry

from models.events import Event, event_to_json
from models.ledger import Ledger as WholeLedger
from models.policy import MetricPolicy
from models.series import compute_points
from sinks.ops_metrics import OpsMetrics, build_ops_metrics
from streams.pipeline.entity_stage import EntityStage
from streams.pipeline.gate_stage import STAMP_HEADER, GateStage
from streams.pipeline.partitioned_stage import StagePart
from tests.unit.builders import churn, contract, conversion, lead, spend
from tests.unit.pipeline_fakes import FakeReader, FakeTable, FakeTopic, Record
from tests.unit.test_gate_stage import SOURCES, Ledger, by_id

PARTITIONS = 2
EVENTS: list[Event] = [
    contract("c1", "C1", "2026-03-05", lead_id="L1"),  # attributed from its lead
    lead("l1", "L1", "2026-03-01", channel="events", estimated_value="500"),
    conversion("v1", "L1", "2026-03-04"),
    contract("c2", "C2", "2026-03-06", account_id="A2", origin="sales", channel="outbound"),
    churn("h1", "A2", "2026-03-20", effective_date="2026-03-25"),
    churn("h2", "A1", "2026-03-21", contract_id="C1", effective_date="2026-04-10"),
    contract("c0", "C1", "2026-03-02", lead_id="L1", account_id="A3"),  # earlier: wins
    spend("s1", "events", "900", "2026-03-03"),
]


class Pipeline:
    """Gates -> entity partitions (hand-offs back to them) -> ledger stage."""

    def __init__(self, flush_every_messages: int = 1) -> None:
        self.ops: OpsMetrics = build_ops_metrics(CollectorRegistry())
        self.by_entity = FakeTopic()
        self.facts = FakeTopic()
        self.dead_letters = FakeTopic()
        self.gate_table = FakeTable()
        self.gates = GateStage(
            policy=MetricPolicy(), sources=SOURCES, table_for=lambda _p: self.gate_table,
            facts=FakeTopic(), dead_letters=FakeTopic(), late=FakeTopic(), ops=self.ops,
            read_by_id=FakeReader(), recovery_done=lambda: True,
            read_changelog_end=self.no_records, by_entity=self.by_entity,
            entity_partitions=PARTITIONS,
        )  # fmt: skip
        self.tables = [FakeTable() for _ in range(PARTITIONS)]
        self.entities = EntityStage(
            policy=MetricPolicy(), partitions=PARTITIONS, table_for=self.tables.__getitem__,
            by_entity=self.by_entity, facts=self.facts, dead_letters=self.dead_letters,
            ops=self.ops, read_by_entity=FakeReader(), recovery_done=lambda: True,
            read_changelog_end=self.no_records, count_parts=lambda _n: None,
        )  # fmt: skip
        self.entities.flush_every_messages = flush_every_messages
        self.ledger = Ledger()
        self.read = 0  # by-entity messages handed to the entity stage so far
        self.offsets = [0] * PARTITIONS  # each by-entity partition's next offset

    async def no_records(self, _partition: int) -> list[Record]:
        return []

    async def admit(self, events: list[Event], offset: int) -> None:
        value, headers = by_id([event_to_json(e).encode() for e in events])
        await self.gates.handle(0, value, headers, offset)

    async def pump(self) -> None:
        """Deliver every by-entity message sent so far (and those they cause), in order."""
        while self.read < len(self.by_entity.sent):
            sent = self.by_entity.sent[self.read]
            self.read += 1
            assert sent.partition is not None
            offset = self.offsets[sent.partition]
            self.offsets[sent.partition] += 1
            await self.entities.handle(sent.partition, sent.value or b"", sent.headers, offset)
        await self.ledger.feed(self.facts)

    def points(self, as_of: dt.date) -> list[object]:
        assert self.ledger.owner.ledger is not None
        return sorted(map(repr, compute_points(self.ledger.owner.ledger, as_of)))


def expected_points(as_of: dt.date) -> list[object]:
    whole = WholeLedger(MetricPolicy())
    for event in EVENTS:
        whole.apply_admitted(event)
    return sorted(map(repr, compute_points(whole, as_of)))


DAYS = [dt.date(2026, 3, 31), dt.date(2026, 4, 30), dt.date(2027, 3, 31)]


async def test_entities_spread_over_partitions_add_up_to_one_ledger() -> None:
    pipeline = Pipeline()
    for offset, event in enumerate(EVENTS):
        await pipeline.admit([event], offset)
        await pipeline.pump()
    senders = {s.headers[STAMP_HEADER].split(b":")[0] for s in pipeline.by_entity.sent}
    assert {b"g0", b"e0", b"e1"} <= senders  # hand-offs went both ways
    assert {s.partition for s in pipeline.by_entity.sent} == {0, 1}
    assert pipeline.ledger.accepted() == len(EVENTS)
    for day in DAYS:
        assert pipeline.points(day) == expected_points(day)
    assert pipeline.dead_letters.sent == []


async def test_a_crash_before_the_flush_repeats_sends_that_are_applied_once() -> None:
    pipeline = Pipeline(flush_every_messages=1000)  # nothing flushed: all is redone
    await pipeline.admit(EVENTS, 0)
    await pipeline.pump()
    sent_before = len(pipeline.by_entity.sent)
    # the entity stage crashes: its parts' unflushed state is lost, and Faust hands it
    # the messages since the last commit again
    for part in list(pipeline.entities.parts.values()):
        assert isinstance(part, StagePart)
        pipeline.entities.drop(part)
    repeated = list(pipeline.by_entity.sent[:sent_before])
    pipeline.offsets = [0] * PARTITIONS
    for sent in repeated:
        assert sent.partition is not None
        offset = pipeline.offsets[sent.partition]
        pipeline.offsets[sent.partition] += 1
        await pipeline.entities.handle(sent.partition, sent.value or b"", sent.headers, offset)
    assert len(pipeline.by_entity.sent) > sent_before  # the hand-offs were sent again
    await pipeline.pump()  # the repeats, and their changes: each skipped by its stamp
    assert pipeline.ledger.accepted() == len(EVENTS)
    for day in DAYS:
        assert pipeline.points(day) == expected_points(day)


async def test_a_message_sent_again_under_a_stamp_applied_before_is_skipped() -> None:
    pipeline = Pipeline()
    await pipeline.admit(EVENTS[:2], 0)
    await pipeline.pump()
    changes = len(pipeline.facts.sent)
    first = pipeline.by_entity.sent[0]
    assert first.partition is not None
    offset = pipeline.offsets[first.partition]
    await pipeline.entities.handle(first.partition, first.value or b"", first.headers, offset)
    assert len(pipeline.facts.sent) == changes  # nothing applied, nothing sent on
    assert pipeline.entities.parts[first.partition].stage.get("next_offset") == offset + 1


async def test_a_partition_this_worker_no_longer_holds_is_left_to_its_next_owner() -> None:
    pipeline = Pipeline()
    pipeline.entities.holds = lambda _partition: False
    await pipeline.admit(EVENTS[:2], 0)
    first = pipeline.by_entity.sent[0]
    assert first.partition is not None
    await pipeline.entities.handle(first.partition, first.value or b"", first.headers, 0)
    assert pipeline.facts.sent == [] and pipeline.entities.parts == {}


async def test_a_revoked_part_is_not_flushed_by_a_message_still_in_flight() -> None:
    pipeline = Pipeline(flush_every_messages=1000)
    await pipeline.admit(EVENTS, 0)
    await pipeline.pump()
    [part, *_] = pipeline.entities.parts.values()
    assert part.unflushed
    changelog = list(pipeline.tables[part.partition].changelog)
    await pipeline.entities.forget_revoked(None, [SimpleNamespace(partition=part.partition)])
    await pipeline.entities.flush(part)  # as a message taken before the revoke would
    assert pipeline.tables[part.partition].changelog == changelog
    assert part.partition not in pipeline.entities.parts
