"""An event later than the allowed lateness is counted and kept, never silently dropped."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from streams.settings import Settings
from tests.integration.scenario import SCENARIO
from tests.integration.test_end_to_end import prometheus_values, redis_values, send
from tests.integration.workers import isolated_settings, start_worker, wait_for

pytestmark = pytest.mark.timeout(240)


async def read_topic(
    settings: Settings, topic: str, count: int
) -> list[tuple[bytes, dict[str, bytes]]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    found: list[tuple[bytes, dict[str, bytes]]] = []
    try:
        async with asyncio.timeout(60):
            while len(found) < count:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    found.extend((r.value, dict(r.headers)) for r in records)
    finally:
        await consumer.stop()
    return found


def test_late_event_goes_to_late_topic_and_within_lateness_restates(
    kafka: str, redis_url: str, tmp_path: Path
) -> None:
    # one partition, so the lateness mark is simply the watermark (see the unit tests for
    # a mark per partition)
    settings = isolated_settings(kafka, redis_url, lateness_seconds=2 * 86400, partitions=1)
    worker = start_worker(settings, tmp_path)
    try:
        spend_mar_10 = SCENARIO[9]  # 2026-03-10T08:00
        lead_mar_01 = SCENARIO[0]  # 9 days earlier: beyond 2 days of lateness
        asyncio.run(send(settings, [spend_mar_10], []))
        wait_for(lambda: redis_values(settings).get(("spend", "7d", "all", "all")) == 1000)

        asyncio.run(send(settings, [lead_mar_01], []))
        late = asyncio.run(read_topic(settings, settings.late_topic, 1))
        assert b'"event_id":"e1"' in late[0][0]
        assert late[0][1]["revpulse-reason"].startswith(b"later than the allowed lateness")
        wait_for(
            lambda: (
                prometheus_values(worker.metrics_text()).get(
                    ("revpulse_events_late_total", (("type", "lead.created"),))
                )
                == 1
            ),
            what="the late event counted",
        )
        assert redis_values(settings)[("leads", "30d", "all", "all")] == 0

        # one day behind the watermark is within the lateness: applied, window restated
        within = dict(SCENARIO[1], occurred_at="2026-03-09T09:00:00Z")
        asyncio.run(send(settings, [within], []))
        wait_for(
            lambda: redis_values(settings).get(("leads", "7d", "all", "all")) == 1,
            what="the restated 7-day lead count",
        )
    finally:
        worker.stop()
