"""Bounded oracle check through the real broker: two workers, shuffled, duplicated input.

The in-process property tests (tests/property) run many examples; this runs a few
seeds end to end and compares what the workers stored in Redis with the oracle.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from bench.oracle import compute_oracle
from models.events import Event, parse_event
from models.series import compute_points
from sinks.readback import read_state
from sinks.redis_keys import RedisKeys, text
from streams.devstack.simulator import FunnelSimulator
from streams.settings import Settings
from tests.integration.test_end_to_end import prometheus_values, send
from tests.integration.workers import WorkerHandle, isolated_settings, start_worker, wait_for

pytestmark = pytest.mark.timeout(400)


def history(seed: int, steps: int) -> list[Event]:
    simulator = FunnelSimulator(random.Random(seed), source=f"seed{seed}")
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    events: list[Event] = []
    for step in range(steps):
        at = start + dt.timedelta(minutes=step * 41)
        events.extend(parse_event(raw) for raw in simulator.step(at))
    return events


def owner_events(workers: list[WorkerHandle]) -> float:
    return max(
        prometheus_values(w.metrics_text()).get(("revpulse_ledger_events", ()), 0) for w in workers
    )


@pytest.mark.parametrize(
    ("seed", "entity_stage"), [(1, False), (2, False), (3, False), (4, True), (5, True)]
)
def test_two_workers_equal_the_oracle(
    seed: int, entity_stage: bool, kafka: str, redis_url: str, tmp_path: Path
) -> None:
    """With REVPULSE_ENTITY_STAGE, the entities are spread over both workers too."""
    events = history(seed, 250)
    rng = random.Random(seed)
    sent = events + rng.sample(events, len(events) // 5)
    rng.shuffle(sent)  # the history spans ~7 days, the tests' lateness is 30 days
    settings = isolated_settings(kafka, redis_url, entity_stage=entity_stage)
    workers = [start_worker(settings, tmp_path, name=f"w{i}") for i in range(2)]
    try:
        asyncio.run(send(settings, [e.model_dump(mode="json") for e in sent], []))
        wait_for(
            lambda: owner_events(workers) == len(events),
            timeout_seconds=150,
            what=f"{len(events)} distinct events in the ledger",
        )
        if entity_stage:  # the entities were kept by key, spread over the partitions
            held = [
                prometheus_values(w.metrics_text()).get(("revpulse_entity_partitions", ()), 0)
                for w in workers
            ]
            assert sum(held) == settings.partitions and min(held) > 0, held  # split
        # a publish after the last batch carries its state delta
        wait_for(lambda: _stored_points(settings, events[-1].occurred_day), timeout_seconds=10)
        for day in (
            events[0].occurred_day,
            events[-1].occurred_day,
            events[-1].occurred_day + dt.timedelta(days=40),
            dt.date(2027, 6, 30),
        ):
            expected = sorted(compute_oracle(events, day, settings.policy()), key=_id)
            wait_for(
                lambda d=day, e=expected: _stored_points(settings, d) == e,
                timeout_seconds=20,
                what=f"stored state equal to the oracle on {day}",
            )
        if entity_stage:  # the contracts and churns come from the entity partitions' parts
            parts, ledger_contracts = asyncio.run(_parts(settings))
            entity_parts = {f"entities-{p}" for p in range(settings.partitions)}
            assert parts == {"0", *entity_parts} and ledger_contracts == 0
    finally:
        for worker in workers:
            worker.stop()


def _id(point: object) -> str:
    return point.series_id  # type: ignore[attr-defined,no-any-return]


async def _parts(settings: Settings) -> tuple[set[str], int]:
    """The state parts listed, and how many contracts the ledger's part holds."""
    keys = RedisKeys(settings.redis_prefix)
    client = aioredis.Redis.from_url(settings.redis_url.get_secret_value())
    try:
        parts = {text(p) for p in await client.smembers(keys.state_parts)}
        return parts, await client.hlen(keys.state_part("0").contracts)
    finally:
        await client.aclose()


def _stored_points(settings: object, day: dt.date) -> list[object]:
    from streams.settings import Settings

    assert isinstance(settings, Settings)
    state = asyncio.run(
        read_state(
            settings.redis_url.get_secret_value(),
            RedisKeys(settings.redis_prefix),
            settings.policy(),
        )
    )
    return sorted(compute_points(state, day), key=_id)
