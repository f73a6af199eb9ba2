"""One bad event never stops the numbers: poison between valid events on one partition,
conflicting duplicates, and a ledger changelog poisoned by an older version."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from models.events import event_to_json, parse_event
from streams.kafka.topics import ensure_topics
from streams.settings import Settings
from tests.integration.ingest import post_json, sample
from tests.integration.scenario import EXPECTED, SCENARIO
from tests.integration.test_end_to_end import (
    prometheus_values,
    read_dead_letters,
    redis_values,
    wait_for_figures,
)
from tests.integration.workers import isolated_settings, start_worker, wait_for

pytestmark = pytest.mark.timeout(300)

NESTED_LEVELS = 10_000


def _contract(event_id: str, **data: Any) -> dict[str, Any]:
    values = {"contract_id": f"C-{event_id}", "account_id": f"A-{event_id}",
              "start_date": "2026-03-05", "term_months": 12, "recurring_value": "1000"}  # fmt: skip
    values.update(data)
    return {"event_id": event_id, "type": "contract.signed",
            "occurred_at": "2026-03-05T12:00:00Z", "data": values}  # fmt: skip


def _raw(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


# (value, what its dead letter's reason must say)
POISON: list[tuple[bytes | None, str]] = [
    (None, "empty message value (tombstone)"),
    (b"[" * NESTED_LEVELS + b"]" * NESTED_LEVELS, "nested too deeply"),
    (_raw(dict(SCENARIO[0], event_id="p-future", occurred_at="3000-01-01T00:00:00Z")),
     "occurred_at"),
    (_raw(_contract("p-start", start_date="9999-12-31")), "start_date"),
    (_raw(_contract("p-money", recurring_value=10**22)), "recurring_value"),
]  # fmt: skip


async def send_on_one_partition(settings: Settings, values: list[bytes | None]) -> None:
    """Every value in order, on partition 0, acknowledged."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(settings.events_topic, value=value, key=b"k", partition=0)
    finally:
        await producer.stop()


def test_poison_between_valid_events_is_dead_lettered_and_nothing_is_lost(
    kafka: str, redis_url: str, tmp_path: Path
) -> None:
    settings = isolated_settings(kafka, redis_url, partitions=1)
    worker = start_worker(settings, tmp_path)
    try:
        valid = [event_to_json(parse_event(event)).encode() for event in SCENARIO]
        # the same event_id as e2 with other content: the first applied version counts
        conflicting = _raw(dict(SCENARIO[1], data=dict(SCENARIO[1]["data"], channel="other")))
        values: list[bytes | None] = []
        for index, event in enumerate(valid):
            values.append(event)
            if index < len(POISON):
                values.append(POISON[index][0])
        values.append(conflicting)
        asyncio.run(send_on_one_partition(settings, values))

        wait_for_figures(settings, EXPECTED)
        letters = asyncio.run(read_dead_letters(settings, len(POISON) + 1))
        reasons = [headers["revpulse-reason"].decode() for _value, headers in letters]
        for (_value, expected), reason in zip(POISON, reasons, strict=False):
            assert expected in reason, (expected, reasons)
        assert reasons[-1] == (
            "event_id e2 already applied with different content; the first applied version counts"
        )
        # the ledger sees the canonical form: that is what is dead-lettered
        assert letters[-1][0] == event_to_json(parse_event(json.loads(conflicting))).encode()
        assert letters[0][0] == b""  # the tombstone, kept as an empty value

        def counted() -> dict[Any, float] | None:
            values = prometheus_values(worker.metrics_text())
            rejected = sum(v for (name, _), v in values.items()
                           if name == "revpulse_events_rejected_total")  # fmt: skip
            conflicts = values.get(
                ("revpulse_events_conflicting_total", (("type", "lead.created"),))
            )
            return values if rejected == len(POISON) and conflicts == 1 else None

        samples = wait_for(counted, what="every poison counted")
        assert samples[("revpulse_events_rejected_total", (("reason", "decode"),))] == 2
        assert samples[("revpulse_events_rejected_total", (("reason", "validation"),))] == 3
        late = sum(v for (name, _), v in samples.items() if name == "revpulse_events_late_total")
        assert late == 0
        assert (
            sum(v for (name, _), v in samples.items() if name == "revpulse_events_consumed_total")
            == len(valid) + 1
        )  # the conflicting version is valid on its own
        figures = redis_values(settings)
        assert figures[("leads", "30d", "all", "organic")] == 1  # e2 as first applied
        assert figures.get(("leads", "30d", "all", "other"), 0) == 0

        # the HTTP path refuses the far-future event, naming the field
        far = dict(SCENARIO[0], event_id="h-future", occurred_at="3000-01-01T00:00:00Z")
        status, body, _headers = post_json(worker, far)
        assert status == 422
        assert [problem["field"] for problem in body["events"][0]["problems"]] == ["occurred_at"]
        ready_status, ready = worker.get("/readyz")
        assert ready_status == 200, ready
        assert json.loads(ready)["publish"] == "ok"
    finally:
        worker.stop()


def test_a_worker_over_a_poisoned_changelog_recovers_and_dead_letters_once(
    kafka: str, redis_url: str, tmp_path: Path
) -> None:
    """The ledger-log changelog an earlier version wrote holds an event the ledger cannot
    hold: the one-time migration into the ledger-state table skips it and dead-letters
    it; the next owner loads the migrated state and neither migrates nor dead-letters
    again."""
    settings = isolated_settings(kafka, redis_url, partitions=1)
    good = event_to_json(parse_event(SCENARIO[0])).encode()  # e1, a lead
    contract = json.loads(event_to_json(parse_event(SCENARIO[6])))  # e7, a contract
    contract["data"]["start_date"] = "9999-12-31"  # accepted by the old contract
    poisoned = json.dumps(contract, separators=(",", ":")).encode()

    async def log_poison() -> None:
        await ensure_topics(settings)
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(settings.legacy_changelog_topic(), 1, 1)])
        finally:
            await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            key = f"{0:020d}-{uuid.uuid4().hex}-{0:05d}".encode()
            await producer.send_and_wait(
                settings.legacy_changelog_topic(), key=key, value=b"\n".join([good, poisoned]),
                partition=0,
            )  # fmt: skip
        finally:
            await producer.stop()

    asyncio.run(log_poison())
    worker = start_worker(settings, tmp_path)
    try:
        wait_for(
            lambda: redis_values(settings).get(("leads", "30d", "all", "all")) == 1,
            what="the good logged event published",
        )
        letters = asyncio.run(read_dead_letters(settings, 1))
        assert letters[0][0] == poisoned
        assert letters[0][1]["revpulse-reason"].decode().startswith("in the ledger changelog:")
        assert "start_date" in letters[0][1]["revpulse-reason"].decode()
        text = worker.metrics_text()
        assert sample(text, "revpulse_events_rejected_total", reason="ledger") == 1
        assert sample(text, "revpulse_ledger_rebuilt_events") == 1
        status, ready = worker.get("/readyz")
        assert status == 200, ready
    finally:
        worker.stop()

    # the next owner, on a data directory of its own, reads the migrated state
    second = start_worker(settings, tmp_path, name="second")
    try:
        wait_for(
            lambda: sample(second.metrics_text(), "revpulse_ledger_rebuilt_events") == 1,
            what="the second load",
        )
        assert "migrating the ledger-log changelog" not in second.log_tail(400)
        assert sample(second.metrics_text(), "revpulse_events_rejected_total", reason="ledger") in (
            None,
            0,
        )
    finally:
        second.stop()
    assert len(asyncio.run(read_all_dead_letters(settings))) == 1


async def read_all_dead_letters(settings: Settings) -> list[bytes]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        settings.dead_letter_topic,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    found: list[bytes] = []
    try:
        for _ in range(6):  # three seconds: anything sent is there by then
            for records in (await consumer.getmany(timeout_ms=500)).values():
                found.extend(record.value or b"" for record in records)
    finally:
        await consumer.stop()
    return found
