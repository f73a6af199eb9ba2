"""``revpulse simulate``: the funnel simulator, sent at a steady rate.

To Kafka directly, or with ``via="http"`` as one signed webhook per event to
``POST /v1/events``, the way a CRM integration sends them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Literal

from models.events import Event, parse_event
from streams.devstack.simulator import FunnelSimulator
from streams.settings import Settings

log = logging.getLogger(__name__)
Send = Callable[[Event], Awaitable[object]]


@asynccontextmanager
async def _sender(settings: Settings, via: Literal["kafka", "http"]) -> AsyncIterator[Send]:
    if via == "http":
        from streams.ingest.client import http_sender, ingest_url

        async with http_sender(settings) as sender:
            log.info("simulating a CRM: signed webhooks to %s", ingest_url(settings))
            yield sender.send_one
    else:
        from streams.kafka.producer import event_producer

        async with event_producer(settings) as producer:
            log.info("simulating into Kafka topic %s", settings.events_topic)
            yield producer.send


async def run_simulation(
    settings: Settings,
    rate_per_second: float,
    duration_seconds: float | None,
    step_count: int | None,
    rng: random.Random,
    via: Literal["kafka", "http"] = "kafka",
) -> int:
    simulator = FunnelSimulator(rng)
    loop = asyncio.get_running_loop()
    started = loop.time()
    steps = sent = 0
    async with _sender(settings, via) as send:
        log.info("simulating %.1f funnel steps/s", rate_per_second)
        while True:
            if step_count is not None and steps >= step_count:
                break
            if duration_seconds is not None and loop.time() - started >= duration_seconds:
                break
            for raw in simulator.step(dt.datetime.now(dt.UTC)):
                await send(parse_event(raw))
                sent += 1
            steps += 1
            next_at = started + steps / rate_per_second
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            if steps % max(1, int(rate_per_second * 10)) == 0:
                log.info("simulator: %d events sent", sent)
    log.info("simulator done: %d events in %d steps", sent, steps)
    return 0
