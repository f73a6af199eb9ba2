"""A publish that fails is counted and makes /readyz not ready, with the reason."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest

from tests.integration import servers
from tests.integration.ingest import sample
from tests.integration.scenario import SCENARIO
from tests.integration.test_end_to_end import redis_values, send
from tests.integration.workers import isolated_settings, start_worker, wait_for

pytestmark = pytest.mark.timeout(240)


@pytest.mark.skipif(
    bool(os.environ.get("REVPULSE_TEST_REDIS_URL")) or servers.docker_reachable(),
    reason="needs a Redis of its own to stop",
)
def test_a_failing_publish_is_counted_and_shown_on_readyz(kafka: str, tmp_path: Path) -> None:
    with servers.redis_url(tmp_path / "own-redis") as redis:
        settings = isolated_settings(kafka, redis)
        worker = start_worker(settings, tmp_path)
        try:
            asyncio.run(send(settings, SCENARIO[:4], []))
            wait_for(lambda: redis_values(settings).get(("leads", "30d", "all", "all")) == 4)
            last_success = wait_for(
                lambda: sample(
                    worker.metrics_text(), "revpulse_last_publish_success_timestamp_seconds"
                ),
                what="a successful publish",
            )
            assert last_success > time.time() - 60
            status, body = worker.get("/readyz")
            assert status == 200 and json.loads(body)["publish"] == "ok"
        except BaseException:
            worker.stop()
            raise
    # Redis is gone: every later publish (or check) fails
    try:
        asyncio.run(send(settings, SCENARIO[4:6], []))

        def not_ready() -> dict[str, object] | None:
            status, text = worker.get("/readyz")
            found: dict[str, object] = json.loads(text)
            failing = status == 503 and "publish" in str(found["not_ready"])
            return found if failing else None

        body = wait_for(not_ready, what="/readyz naming the failing publish")
        assert str(body["publish"]).startswith("publish failing since ")
        assert ": redis: " in str(body["publish"])
        text = worker.metrics_text()
        assert (sample(text, "revpulse_publish_failures_total", step="redis") or 0) >= 1
        stale = sample(text, "revpulse_last_publish_success_timestamp_seconds")
        assert stale is not None
        time.sleep(2)  # ticks every 0.3 s: none of them a success
        assert sample(worker.metrics_text(), "revpulse_last_publish_success_timestamp_seconds") == (
            stale
        )
    finally:
        worker.stop()
