"""Events through the real events topic come out exact in Redis and on /metrics."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from prometheus_client.parser import text_string_to_metric_families

from models.events import parse_event
from sinks.readback import read_current
from sinks.redis_keys import RedisKeys
from streams.kafka.producer import event_producer
from streams.settings import Settings
from tests.integration.scenario import AS_OF, EXPECTED, SCENARIO, UNDEFINED
from tests.integration.workers import WorkerHandle, isolated_settings, start_worker, wait_for

pytestmark = pytest.mark.timeout(240)

Series = tuple[str, str, str, str]


@pytest.fixture
def worker(kafka: str, redis_url: str, tmp_path: Path) -> Iterator[WorkerHandle]:
    handle = start_worker(isolated_settings(kafka, redis_url), tmp_path)
    yield handle
    handle.stop()


def redis_values(settings: Settings) -> dict[Series, Decimal | None]:
    points, _meta = asyncio.run(
        read_current(settings.redis_url.get_secret_value(), RedisKeys(settings.redis_prefix))
    )
    return {(p.metric, p.window, p.origin, p.channel): p.value for p in points}


def wait_for_figures(
    settings: Settings, expected: dict[Series, Decimal], timeout_seconds: float = 90
) -> dict[Series, Decimal | None]:
    """Redis values once every expected series has its value (events on other partitions
    may still be on their way when one sentinel series is already right)."""

    def all_there() -> dict[Series, Decimal | None] | None:
        values = redis_values(settings)
        wrong = {s: values.get(s) for s, v in expected.items() if values.get(s) != v}
        return None if wrong else values

    found: dict[Series, Decimal | None] = wait_for(
        all_there, timeout_seconds, what=f"the expected figures: {sorted(expected)}"
    )
    return found


def prometheus_values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def send(settings: Settings, events: list[dict[str, object]], raw: list[bytes]) -> None:
    async with event_producer(settings) as producer:
        for index, event in enumerate(events):
            await producer.send(parse_event(event))
            if index == 3:
                for value in raw:
                    await producer.send_raw(value, key=b"bad")
        await producer.flush()


async def read_dead_letters(settings: Settings, count: int) -> list[tuple[bytes, dict[str, bytes]]]:
    consumer = AIOKafkaConsumer(
        settings.dead_letter_topic,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    found: list[tuple[bytes, dict[str, bytes]]] = []
    try:
        async with asyncio.timeout(60):
            while len(found) < count:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    found.extend((r.value, dict(r.headers)) for r in records)
    finally:
        await consumer.stop()
    return found


def test_events_become_exact_metrics_in_redis_and_prometheus(worker: WorkerHandle) -> None:
    settings = worker.settings
    garbage = [b"{not json", json.dumps({"event_id": "x1", "type": "lead.created"}).encode()]
    asyncio.run(send(settings, SCENARIO, garbage))

    values = wait_for_figures(settings, EXPECTED)
    for series in UNDEFINED:
        assert series not in values
    assert {p for p in values if p[0] == "leads"}  # published per segment as well

    # the bad messages went to another partition: the intake may read them a little later
    wait_for(
        lambda: (
            sum(
                value
                for (name, _labels), value in prometheus_values(worker.metrics_text()).items()
                if name == "revpulse_events_rejected_total"
            )
            == 2
        ),
        what="both bad messages rejected",
    )
    text = worker.metrics_text()
    samples = prometheus_values(text)

    def sample(name: str, **labels: str) -> float | None:
        return samples.get((name, tuple(sorted(labels.items()))))

    assert sample("revpulse_arr", window="point", origin="all", channel="all") == 16000
    assert (
        sample("revpulse_conversion_rate_ratio", window="30d", origin="all", channel="all") == 0.5
    )
    assert sample("revpulse_cac", window="30d", origin="all", channel="all") == 2000
    assert sample("revpulse_cac", window="30d", origin="all", channel="organic") is None
    assert sample("revpulse_cac_denominator", window="30d", origin="all", channel="organic") == 0
    assert sample("revpulse_events_consumed_total", type="lead.created") == 4
    assert sample("revpulse_events_rejected_total", reason="decode") == 1
    assert sample("revpulse_events_rejected_total", reason="validation") == 1

    letters = read_dead_letters(settings, 2)
    letters = asyncio.run(letters)
    reasons = sorted(headers["revpulse-reason"].decode() for _value, headers in letters)
    assert reasons[0].startswith("<body>: not valid JSON")
    assert "data: Field required" in reasons[1]
    for _value, headers in letters:
        assert headers["revpulse-source-topic"].decode() == settings.events_topic
        assert int(headers["revpulse-source-offset"]) >= 0


def test_duplicates_and_reordering_do_not_change_figures(worker: WorkerHandle) -> None:
    settings = worker.settings
    # reversed, but within the 7-day lateness (the scenario spans 3/01 to 3/06, then 3/10)
    shuffled = list(reversed(SCENARIO[:9])) + SCENARIO[9:] + SCENARIO[:5]
    asyncio.run(send(settings, shuffled, []))
    wait_for_figures(settings, EXPECTED)
    wait_for(
        lambda: (
            prometheus_values(worker.metrics_text()).get(
                ("revpulse_events_duplicate_total", (("type", "lead.created"),))
            )
            == 4
        ),
        what="4 duplicate leads counted",
    )
    values = redis_values(settings)
    for series, expected in EXPECTED.items():
        assert values.get(series) == expected, series  # the duplicates changed nothing
    _points, meta = asyncio.run(
        read_current(settings.redis_url.get_secret_value(), RedisKeys(settings.redis_prefix))
    )
    assert meta["clock"].startswith(AS_OF)  # event-time clock: the watermark


def test_docs_name_every_served_series(worker: WorkerHandle) -> None:
    asyncio.run(send(worker.settings, SCENARIO, [b"{"]))
    wait_for(
        lambda: redis_values(worker.settings).get(("arr", "point", "all", "all")) == 16000,
        what="a publish",
    )
    docs_dir = Path(__file__).parents[2] / "docs"
    docs = "".join(page.read_text() for page in sorted(docs_dir.glob("*.md")))
    served = {
        family.name
        for family in text_string_to_metric_families(worker.metrics_text())
        if family.name.startswith("revpulse_")
    }
    assert len(served) > 40
    undocumented = sorted(
        name for name in served if f"`{name}`" not in docs and f"`{name}_total`" not in docs
    )
    assert undocumented == []
