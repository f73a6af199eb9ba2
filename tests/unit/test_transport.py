"""The worker consumer takes its fetch wait from the settings (Faust fixes 1,500 ms)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prometheus_client import CollectorRegistry

from streams.pipeline.app import build_pipeline
from streams.settings import Settings


def _worker_consumer_fetch_wait_ms(settings: Settings) -> int:
    app = build_pipeline(settings, sinks=[], registry=CollectorRegistry()).app

    async def build() -> int:
        thread = app.consumer._thread  # type: ignore[attr-defined]
        consumer = thread._create_worker_consumer(app.transport)
        wait_ms: int = consumer._fetch_max_wait_ms
        await consumer.stop()  # never started: closes it without a broker
        return wait_ms

    thread = app.consumer._thread  # type: ignore[attr-defined]
    try:
        return asyncio.run(build())
    finally:  # the loops Faust made for the app and the consumer thread
        thread.thread_loop.close()
        app.loop.close()


def test_worker_consumer_uses_the_configured_fetch_wait(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, fetch_max_wait_ms=37, insecure_dev_mode=True)
    assert _worker_consumer_fetch_wait_ms(settings) == 37


def test_default_fetch_wait_is_short(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, insecure_dev_mode=True)
    assert _worker_consumer_fetch_wait_ms(settings) == 100
