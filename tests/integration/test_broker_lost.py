"""The embedded broker keeps data in memory only: after it restarts empty, a worker on
its old data directory starts its local state afresh instead of keeping what is gone."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streams.devstack.stack import free_port, start_broker
from streams.settings import Settings
from tests.integration.scenario import SCENARIO
from tests.integration.test_end_to_end import prometheus_values, send
from tests.integration.workers import WorkerHandle, isolated_settings, start_worker, wait_for

pytestmark = pytest.mark.timeout(300)


def sample(worker: WorkerHandle, name: str) -> float | None:
    return prometheus_values(worker.metrics_text()).get((name, ()))


async def topic_config(settings: Settings, topic: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    [(_error, _message, _type, _name, entries)] = response.resources
    return {entry[0]: entry[1] for entry in entries}


def test_a_worker_discards_local_state_the_restarted_broker_lost(
    redis_url: str, tmp_path: Path
) -> None:
    port = free_port()
    broker = start_broker(port, tmp_path / "broker-1")
    settings = isolated_settings(f"127.0.0.1:{port}", redis_url)
    worker: WorkerHandle | None = None
    try:
        worker = start_worker(settings, tmp_path, name="worker")
        changelog = asyncio.run(topic_config(settings, settings.changelog_topic()))
        assert changelog.get("cleanup.policy") == "compact"  # as created at start
        asyncio.run(send(worker.settings, SCENARIO[:3], []))
        wait_for(lambda: sample(worker, "revpulse_ledger_events") == 3, what="3 events")
        time.sleep(2)  # past the changelog sends: the local store holds their offsets
        worker.kill()
        broker.stop()
        broker = start_broker(port, tmp_path / "broker-2")  # empty: memory storage

        worker = start_worker(settings, tmp_path, name="worker")  # the old data directory
        assert "the broker lost it" in worker.log_tail(400)
        assert sample(worker, "revpulse_ledger_changelog_tail_records") == 0
        assert sample(worker, "revpulse_ledger_events") == 0  # not the 3 the broker lost
        asyncio.run(send(worker.settings, SCENARIO[3:5], []))
        wait_for(lambda: sample(worker, "revpulse_ledger_events") == 2, what="2 new events")
    finally:
        if worker is not None:
            worker.kill()
        broker.stop()
