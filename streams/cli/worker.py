"""``revpulse worker``."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING

from streams.cli.command import Command
from streams.settings import Settings

if TYPE_CHECKING:
    from faust.types import TP
    from prometheus_client import CollectorRegistry

    from sinks.base import PartSink, Sink
    from streams.pipeline.app import Pipeline
    from streams.pipeline.log_table import FaustLogTable


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


def local_tables(settings: Settings, pipeline: Pipeline) -> list[tuple[FaustLogTable, TP]]:
    """Each table partition the worker keeps locally, with its changelog partition: the
    ledger's, the id gate's (a partition each) and the entity stage's (a partition each)."""
    from faust.types import TP

    found = [(pipeline.log_table, TP(settings.changelog_topic(), 0))]
    for partition in range(settings.partitions):
        found.append(
            (pipeline.gate_table(partition), TP(settings.gate_changelog_topic(), partition))
        )
        if pipeline.entity_table is not None:
            changelog = TP(settings.entities_changelog_topic(), partition)
            found.append((pipeline.entity_table(partition), changelog))
    return found


def run(settings: Settings, _args: argparse.Namespace) -> int:
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
    from streams.pipeline.start_pages import StartPages

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
    # the pages answer while the local stores are made ready, before Faust's own start
    with StartPages(settings.web_host, settings.web_port, registry) as pages:
        tail = sum(
            ready_local_state(table, settings.kafka_bootstrap, changelog,
                              on_disk=settings.table_store == "rocksdb",
                              say=pages.say)
            for table, changelog in local_tables(settings, pipeline)
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
