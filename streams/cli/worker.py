"""``revpulse worker``."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING

from streams.cli.command import Command
from streams.settings import Settings

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from sinks.base import PartSink, Sink


def build_sinks(
    settings: Settings, registry: CollectorRegistry
) -> tuple[list[Sink], PartSink | None]:
    """The publisher's sinks, and with the entity stage where its partitions write their
    parts of the state copy (bounded alike)."""
    from models.reach import StateReach
    from sinks.part_sink import RedisPartSink
    from sinks.prometheus_sink import PrometheusSink
    from sinks.redis_keys import RedisKeys
    from sinks.redis_sink import RedisSink

    url, keys = settings.redis_url.get_secret_value(), RedisKeys(settings.redis_prefix)
    reach = StateReach.for_policy(settings.policy())
    sinks: list[Sink] = [
        RedisSink(url, keys, settings.history_length, reach=reach),
        PrometheusSink(registry, settings.reporting_currency),
    ]
    return sinks, RedisPartSink(url, keys, reach=reach) if settings.entity_stage else None


def run(settings: Settings, _args: argparse.Namespace) -> int:
    from faust.types import TP
    from prometheus_client import (
        CollectorRegistry,
        GCCollector,
        ProcessCollector,
        disable_created_metrics,
    )

    from streams.ingest.http import check_secrets
    from streams.kafka.clients import topic_exists
    from streams.kafka.topics import ensure_topics
    from streams.pipeline.app import build_pipeline
    from streams.pipeline.local_state import hold_data_dir, ready_local_state
    from streams.pipeline.runner import run_worker

    check_secrets(settings)  # refuse to start before touching Kafka
    data_dir_lock = hold_data_dir(settings.data_dir)  # held until the process exits
    asyncio.run(ensure_topics(settings))
    disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)  # process_resident_memory_bytes, cpu seconds, fds
    GCCollector(registry=registry)  # python_gc_collections_total by generation
    sinks, part_sink = build_sinks(settings, registry)
    legacy = asyncio.run(topic_exists(settings.kafka_bootstrap, settings.legacy_changelog_topic()))
    pipeline = build_pipeline(
        settings, sinks, registry, legacy_changelog=legacy, part_sink=part_sink
    )
    on_disk = settings.table_store == "rocksdb"
    changelog = TP(settings.changelog_topic(), 0)
    tail = ready_local_state(
        pipeline.log_table, settings.kafka_bootstrap, changelog, on_disk=on_disk
    )
    for partition in range(settings.partitions):  # the id gate's table, a partition each
        tail += ready_local_state(
            pipeline.gate_table(partition), settings.kafka_bootstrap,
            TP(settings.gate_changelog_topic(), partition), on_disk=on_disk,
        )  # fmt: skip
    if pipeline.entity_table is not None:  # the entity stage's table, a partition each
        for partition in range(settings.partitions):
            tail += ready_local_state(
                pipeline.entity_table(partition), settings.kafka_bootstrap,
                TP(settings.entities_changelog_topic(), partition), on_disk=on_disk,
            )  # fmt: skip
    pipeline.ops.changelog_tail.set(tail)
    try:
        return run_worker(pipeline.app, settings)
    finally:
        data_dir_lock.close()


COMMAND = Command(
    name="worker",
    help="run a stream worker against the configured Kafka and Redis",
    description="Run one Faust worker: consumes the events topic, keeps the ledger "
    "(if it owns it), publishes to Redis and serves Prometheus /metrics, /healthz and "
    "/readyz on REVPULSE_WEB_HOST:REVPULSE_WEB_PORT. Run several with the same "
    "REVPULSE_APP_ID to share the work.",
    run=run,
    service=True,
)
