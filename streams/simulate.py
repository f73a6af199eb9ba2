"""``revpulse simulate``: the funnel simulator, sent to Kafka at a steady rate."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random

from models.events import parse_event
from streams.producer import event_producer
from streams.settings import Settings
from streams.simulator import FunnelSimulator

log = logging.getLogger(__name__)


async def run_simulation(
    settings: Settings,
    rate_per_second: float,
    duration_seconds: float | None,
    step_count: int | None,
    rng: random.Random,
) -> int:
    simulator = FunnelSimulator(rng)
    loop = asyncio.get_running_loop()
    started = loop.time()
    steps = sent = 0
    async with event_producer(settings) as producer:
        log.info("simulating %.1f funnel steps/s into %s", rate_per_second, settings.events_topic)
        while True:
            if step_count is not None and steps >= step_count:
                break
            if duration_seconds is not None and loop.time() - started >= duration_seconds:
                break
            for raw in simulator.step(dt.datetime.now(dt.UTC)):
                await producer.send(parse_event(raw))
                sent += 1
            steps += 1
            next_at = started + steps / rate_per_second
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            if steps % max(1, int(rate_per_second * 10)) == 0:
                log.info("simulator: %d events sent", sent)
    log.info("simulator done: %d events in %d steps", sent, steps)
    return 0
