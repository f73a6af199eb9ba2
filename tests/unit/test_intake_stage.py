"""The intake stage without a broker: good events forwarded to the by-id partition of
their event_id with their source and the sources' marks, bad ones dead-lettered with the
reason, skipped offsets read back."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

from prometheus_client import CollectorRegistry

from models.events import event_to_json, parse_event_bytes
from models.policy import MetricPolicy
from sinks.ops_metrics import OpsMetrics, build_ops_metrics
from streams.kafka.keys import partition_of
from streams.pipeline.intake_stage import (
    ARRIVAL_HEADER,
    MARKS_HEADER,
    SOURCES_HEADER,
    IntakeStage,
)
from streams.pipeline.offsets import Incoming
from tests.unit.pipeline_fakes import FakeReader, FakeTopic, Record

TOPIC = "events"


def lead(event_id: str, occurred_at: str = "2024-03-10T08:00:00Z") -> bytes:
    return json.dumps({
        "event_id": event_id, "type": "lead.created", "occurred_at": occurred_at,
        "data": {"lead_id": f"L-{event_id}", "channel": "web", "origin": "marketing"},
    }).encode()  # fmt: skip


def canonical(value: bytes) -> bytes:
    return event_to_json(parse_event_bytes(value)).encode()


def message(partition: int, offset: int, value: bytes | None) -> Incoming:
    return Incoming(TOPIC, partition, offset, 1_700_000_000.25 + offset, b"k", value)


class Harness:
    def __init__(
        self, committed: dict[int, int | None] | None = None, by_id_partitions: int = 1
    ) -> None:
        self.facts = FakeTopic()  # the by-id topic
        self.dead_letters = FakeTopic()
        self.reader = FakeReader()
        self.committed = committed or {}
        self.ops: OpsMetrics = build_ops_metrics(CollectorRegistry())
        self.stage = IntakeStage(
            policy=MetricPolicy(),
            max_future=dt.timedelta(days=1),
            events_topic=TOPIC,
            by_id=self.facts,
            by_id_partitions=by_id_partitions,
            dead_letters=self.dead_letters,
            ops=self.ops,
            committed_offset=self.committed_offset,
            read_events=self.reader,
            batch_max_events=500,
            batch_within_seconds=0.2,
        )

    async def committed_offset(self, partition: int) -> int | None:
        return self.committed.get(partition)

    def count(self, counter: str, **labels: str) -> float:
        metric = getattr(self.ops, counter)
        return float((metric.labels(**labels) if labels else metric)._value.get())


async def test_good_events_go_on_with_their_sources_arrivals_and_the_sources_marks() -> None:
    harness = Harness()
    await harness.stage.handle([
        message(0, 10, lead("a", "2024-03-10T08:00:00Z")),
        message(1, 4, lead("b", "2024-03-09T08:00:00Z")),
        message(0, 11, lead("c", "2024-03-08T08:00:00Z")),
    ])  # fmt: skip
    [sent] = harness.facts.sent
    assert sent.partition == 0
    assert (sent.value or b"").split(b"\n") == [
        canonical(lead("a", "2024-03-10T08:00:00Z")),
        canonical(lead("b", "2024-03-09T08:00:00Z")),
        canonical(lead("c", "2024-03-08T08:00:00Z")),
    ]
    assert sent.headers[SOURCES_HEADER] == b"0,1,0"
    assert sent.headers[ARRIVAL_HEADER] == b"1700000010250,1700000004250,1700000011250"
    # per source, the latest occurred_at of its good events in the batch
    assert sent.headers[MARKS_HEADER] == b"0=2024-03-10T08:00:00+00:00,1=2024-03-09T08:00:00+00:00"
    assert harness.dead_letters.sent == []
    assert harness.count("consumed", type="lead.created") == 3
    assert harness.count("last_event") > 0


async def test_each_event_goes_to_its_ids_partition_and_every_partition_hears_the_marks() -> None:
    harness = Harness(by_id_partitions=4)
    ids = [f"ev-{n}" for n in range(12)]
    await harness.stage.handle([message(0, n, lead(i)) for n, i in enumerate(ids)])
    sent = harness.facts.sent
    assert sorted(m.partition for m in sent) == [0, 1, 2, 3]
    for m in sent:
        lines = [line for line in (m.value or b"").split(b"\n") if line]
        assert lines == [canonical(lead(i)) for i in ids if partition_of(i, 4) == m.partition]
        assert m.headers[MARKS_HEADER] == b"0=2024-03-10T08:00:00+00:00"
    assert sum(bool(m.value) for m in sent) == len({partition_of(i, 4) for i in ids})


async def test_bad_messages_are_dead_lettered_with_the_reason_and_the_batch_goes_on() -> None:
    harness = Harness()
    await harness.stage.handle([
        message(2, 5, b"not json"), message(2, 6, None), message(2, 7, lead("ok")),
        message(2, 8, lead("future").replace(b"2024-03-10", b"3000-01-01")),
    ])  # fmt: skip
    assert harness.facts.values == [canonical(lead("ok"))]
    dead = harness.dead_letters.sent
    assert [m.value for m in dead[:2]] == [b"not json", b""]  # a tombstone's value: empty
    assert [m.headers["revpulse-source-offset"] for m in dead] == [b"5", b"6", b"8"]
    assert {m.headers["revpulse-source-topic"] for m in dead} == {TOPIC.encode()}
    assert b"tombstone" in dead[1].headers["revpulse-reason"]
    assert dead[2].headers["revpulse-reason"].startswith(b"occurred_at")
    assert harness.count("rejected", reason="decode") == 2
    assert harness.count("rejected", reason="validation") == 1


async def test_offsets_the_consumer_skipped_are_read_back_first() -> None:
    harness = Harness(committed={0: 3})
    harness.reader.records = [
        Record(TOPIC, 0, offset, 1_700_000_000_000, None, lead(f"s{offset}")) for offset in (3, 4)
    ]
    await harness.stage.handle([message(0, 5, lead("live"))])
    assert harness.reader.asked == [(0, 3, 5)]  # from the group's committed offset
    expected = [canonical(lead("s3")), canonical(lead("s4")), canonical(lead("live"))]
    assert harness.facts.values == [b"\n".join(expected)]
    assert harness.count("events_skipped") == 2
    assert harness.stage.next_offsets == {0: 6}

    await harness.stage.handle([message(0, 6, lead("next"))])  # no gap: nothing read
    assert harness.reader.asked == [(0, 3, 5)]


async def test_a_revoked_partition_starts_again_from_the_committed_offset() -> None:
    harness = Harness(committed={0: 6})
    await harness.stage.handle([message(0, 6, lead("a")), message(1, 0, lead("b"))])
    revoked = [
        SimpleNamespace(topic=TOPIC, partition=0),
        SimpleNamespace(topic="facts", partition=1),
    ]
    await harness.stage.forget_revoked(None, revoked)
    assert harness.stage.next_offsets == {1: 1}
    harness.committed[0] = 9
    await harness.stage.handle([message(0, 9, lead("c"))])  # no gap from offset 7 on
    assert harness.reader.asked == []
