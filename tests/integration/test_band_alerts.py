"""In-stream band alerts: a band change of ACV from marketing leads lands on the Kafka
alerts topic and the Redis stream, a value sitting on a threshold does not flap, and
``revpulse alerts`` shows the changes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis
from aiokafka import AIOKafkaConsumer

from sinks.redis_keys import RedisKeys
from streams.settings import Settings
from tests.integration.monitoring import ev, send
from tests.integration.workers import (
    WorkerHandle,
    isolated_settings,
    run_cli,
    start_worker,
    wait_for,
)

pytestmark = pytest.mark.timeout(240)


def marketing_contract(number: int, acv: int) -> dict[str, Any]:
    """A 12-month new contract from a marketing lead: its ACV is its recurring value."""
    return ev(
        f"b{number}", "contract.signed", f"2026-05-{number:02d}T12:00:00Z",
        contract_id=f"BC{number}", account_id=f"BA{number}", origin="marketing",
        channel="paid_search", start_date=f"2026-05-{number:02d}", term_months=12,
        recurring_value=str(acv),
    )  # fmt: skip


# (ACV of the next contract, mean ACV from marketing leads over 30 days, band after it)
# thresholds: strong >= 1,000,000, moderate >= 500,000, hysteresis 2 % (490,000/510,000)
STEPS = [
    (1_200_000, 1_200_000, "strong"),  # the first band: no change event
    (200_000, 700_000, "moderate"),  # change 1: strong -> moderate
    (50_000, 483_333.33, "under"),  # change 2: moderate -> under (below 490,000)
    (550_000, 500_000, "under"),  # on the threshold: the plain band would be moderate
    (495_000, 499_000, "under"),  # just below it
    (505_000, 500_000, "under"),  # back on it
]


def exact(fields: dict[str, str]) -> dict[str, str]:
    """The value as a normalized decimal string ("700000.000000" -> "700000")."""
    return {**fields, "value": format(Decimal(fields["value"]).normalize(), "f")}


@pytest.fixture
def worker(kafka: str, redis_url: str, tmp_path: Path) -> Iterator[WorkerHandle]:
    settings = isolated_settings(kafka, redis_url)
    handle = start_worker(settings, tmp_path)
    yield handle
    handle.stop()


async def read_alerts_topic(settings: Settings, count: int) -> list[tuple[bytes, bytes]]:
    consumer = AIOKafkaConsumer(
        settings.alerts_topic,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    found: list[tuple[bytes, bytes]] = []
    try:
        async with asyncio.timeout(30):
            while len(found) < count:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    found.extend((r.key, r.value) for r in records)
        # and nothing more arrives
        extra = await consumer.getmany(timeout_ms=1500)
        found.extend((r.key, r.value) for records in extra.values() for r in records)
    finally:
        await consumer.stop()
    return found


def test_band_changes_reach_kafka_and_redis_without_flapping(worker: WorkerHandle) -> None:
    settings = worker.settings
    keys = RedisKeys(settings.redis_prefix)
    client = redis.Redis.from_url(settings.redis_url.get_secret_value(), decode_responses=True)
    try:
        for number, (acv, mean, band) in enumerate(STEPS, start=1):
            send(settings, [marketing_contract(number, acv)])
            watermark = f"2026-05-{number:02d}T12:00:00+00:00"
            meta = wait_for(
                lambda w=watermark: (m := client.hgetall(keys.meta)).get("watermark") == w and m,
                what=f"step {number} published",
            )
            assert meta["band"] == band, (number, acv, mean)
        stream = client.xrange(keys.alerts)
    finally:
        client.close()

    expected = [
        {"previous": "strong", "current": "moderate", "value": "700000",
         "window": "30d", "clock": "2026-05-02T12:00:00+00:00"},
        {"previous": "moderate", "current": "under", "value": "483333.333333",
         "window": "30d", "clock": "2026-05-03T12:00:00+00:00"},
    ]  # fmt: skip
    assert [exact(fields) for _id, fields in stream] == expected

    records = asyncio.run(read_alerts_topic(settings, len(expected)))
    assert [key for key, _value in records] == [b"marketing_acv_band"] * len(expected)
    assert [exact(json.loads(value)) for _key, value in records] == expected

    shown = run_cli(settings, "alerts", "--json")
    assert shown.returncode == 0, shown.stderr
    lines = [json.loads(line) for line in shown.stdout.splitlines()]
    assert [exact({k: line[k] for k in expected[0]}) for line in lines] == expected[::-1]
    assert [line["id"] for line in lines] == [entry_id for entry_id, _f in stream][::-1]

    table = run_cli(settings, "alerts")
    assert table.returncode == 0, table.stderr
    rows = table.stdout.splitlines()
    assert "change" in rows[1] and "ACV from marketing leads" in rows[1]
    assert "moderate -> under" in rows[2] and "483,333.33" in rows[2]
    assert "strong -> moderate" in rows[3] and "700,000" in rows[3]
    assert len(rows) == 4
