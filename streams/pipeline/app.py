"""The Faust worker, wired: the app, its topics and the ledger-state table, and the stages
that run on them, each in a module of its own and tested without a broker.

events topic --IntakeStage--> by-id topic --GateStage--> facts topic --LedgerStage--> ledger
  (N, outside keys)  \\-> dead    (N, by event_id)  \\-> late,    (1 partition)          |
                         letters    id-gate table      dead letters      ledger-state   Publisher
                                    (N partitions)                       table (1)          |
                                                              sinks (Redis, Prometheus, alerts)
With REVPULSE_ENTITY_STAGE the GateStage sends to the by-entity topic (N partitions, keyed
by lead, contract and account) instead, the EntityStage sends what the entities change
to the facts topic, and EntityParts writes each held partition's contracts and churns
to a part of the state copy of its own (docs/how-it-works.md, "The entity stage").
WebPages serves /metrics, /healthz and /readyz; Probes measure the loop and the lag. The
sinks are started as tasks and closed when the app stops (Pipeline.close_sinks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import faust
from faust.types import TP
from prometheus_client import CollectorRegistry

from sinks.alerts_topic import AlertsTopicSink
from sinks.base import PartSink, Sink
from sinks.ops_metrics import OpsMetrics, build_ops_metrics
from streams.ingest.http import register_ingest_routes
from streams.kafka.clients import committed_offset, read_partition, read_range
from streams.pipeline.entity_parts import EntityParts, part_clock
from streams.pipeline.entity_stage import EntityStage
from streams.pipeline.gate_stage import GATE_FLUSH_AFTER_SECONDS, GateStage
from streams.pipeline.health import PartsHealth, PublishHealth, ReadinessProbes
from streams.pipeline.intake_stage import IntakeStage
from streams.pipeline.ledger_stage import LedgerStage, TableRecovery, no_records
from streams.pipeline.log_table import (
    GATE_ROCKSDB_OPTIONS,
    ROCKSDB_OPTIONS,
    FaustLogTable,
    changelog_end_past_recovery,
)
from streams.pipeline.owner import LedgerOwner
from streams.pipeline.probes import (
    CONSUMER_LAG_EVERY_SECONDS,
    Probes,
    changelog_records_left,
    recovery_done,
)
from streams.pipeline.publisher import Publisher
from streams.pipeline.standby import Followed, StandbyFollower
from streams.pipeline.transport import RevpulseApp
from streams.pipeline.web import WebPages
from streams.settings import ENTITIES_TABLE, ID_GATE_TABLE, LEDGER_STATE_TABLE, Settings


@dataclass(frozen=True)
class Pipeline:
    app: faust.App
    owner: LedgerOwner
    intake: IntakeStage
    gate: GateStage
    ledger: LedgerStage
    publisher: Publisher
    web: WebPages
    ops: OpsMetrics
    log_table: FaustLogTable
    gate_table: Callable[[int], FaustLogTable]  # the id-gate table's partition views
    # with REVPULSE_ENTITY_STAGE: the entity stage and its table's partition views
    entities: EntityStage | None = None
    entity_table: Callable[[int], FaustLogTable] | None = None
    entity_parts: EntityParts | None = None  # what writes their parts of the state copy

    async def close_sinks(self, _app: Any, **_kwargs: Any) -> None:
        """On stop (Faust's on_before_shutdown: the consumer stopped, no timer starts a
        tick again): the publisher's sinks and the entity parts' sink close their
        connections."""
        await self.publisher.close_sinks()
        if self.entity_parts is not None:
            await self.entity_parts.close()


@dataclass(frozen=True)
class Topics:
    events: Any  # N partitions
    by_id: Any  # N partitions, keyed by event_id: one id gate each
    by_entity: Any  # N partitions, keyed by entity: entity state (REVPULSE_ENTITY_STAGE)
    facts: Any  # 1 partition: one ledger, in one order
    dead_letters: Any
    late: Any
    alerts: Any

    @classmethod
    def declare(cls, app: faust.App, settings: Settings) -> Topics:
        def raw(name: str, partitions: int) -> Any:
            return app.topic(
                name, partitions=partitions, key_serializer="raw", value_serializer="raw"
            )

        return cls(
            events=raw(settings.events_topic, settings.partitions),
            by_id=raw(settings.by_id_topic, settings.partitions),
            by_entity=raw(settings.by_entity_topic, settings.partitions),
            facts=raw(settings.facts_topic, 1),
            dead_letters=raw(settings.dead_letter_topic, settings.partitions),
            late=raw(settings.late_topic, 1),
            alerts=raw(settings.alerts_topic, 1),
        )


def follows_own_standbys(settings: Settings) -> bool:
    """Whether the workers keep standby copies themselves (streams.pipeline.standby): on
    the RocksDB store, which keeps what they read; the memory store keeps Faust's."""
    return settings.table_store == "rocksdb"


def faust_standby_replicas(settings: Settings) -> int:
    """Faust's own standby replicas: none where the workers follow the changelogs
    themselves; the setting's on the memory store."""
    return 0 if follows_own_standbys(settings) else settings.table_standby_replicas


@dataclass(frozen=True)
class FollowedTable:
    """A table as the standby follower sees it."""

    input_topic: str  # a worker holds partition p of the table when it holds this one's p
    changelog: str
    view: Callable[[int], FaustLogTable]  # partition -> its view
    partitions: int


def standby_follower(
    app: faust.App, settings: Settings, tables: list[FollowedTable]
) -> StandbyFollower:
    """What follows, as a standby, the partitions of ``tables`` this worker does not hold."""

    def not_held() -> list[Followed]:
        held = app.assignor.assigned_actives()
        return [
            Followed(table.changelog, partition, table.view(partition))
            for table in tables
            for partition in range(table.partitions)
            if TP(table.input_topic, partition) not in held
        ]

    return StandbyFollower(settings.kafka_bootstrap, not_held)


def followed_tables(settings: Settings, pipeline: Pipeline) -> list[FollowedTable]:
    """The tables a standby follows: the ledger's, the id gate's, the entities' (if any)."""
    ledger_table = pipeline.log_table
    tables = [
        FollowedTable(settings.facts_topic, settings.changelog_topic(),
                      lambda _partition: ledger_table, 1),
        FollowedTable(settings.by_id_topic, settings.gate_changelog_topic(),
                      pipeline.gate_table, settings.partitions),
    ]  # fmt: skip
    if pipeline.entity_table is not None:
        tables.append(
            FollowedTable(
                settings.by_entity_topic,
                settings.entities_changelog_topic(),
                pipeline.entity_table,
                settings.partitions,
            )
        )
    return tables


def follow_standbys(app: faust.App, settings: Settings, pipeline: Pipeline) -> None:
    """With standby replicas on a RocksDB store: follow, after each rebalance, the table
    partitions this worker does not hold; stop at the start of each (and on stop)."""
    if not settings.table_standby_replicas or not follows_own_standbys(settings):
        return
    follower = standby_follower(app, settings, followed_tables(settings, pipeline))
    app.on_partitions_revoked.connect(follower.on_revoked)
    app.on_partitions_assigned.connect(follower.on_assigned)
    app.on_before_shutdown.connect(follower.on_revoked)


def faust_app(settings: Settings) -> faust.App:
    (settings.data_dir / "faust").mkdir(parents=True, exist_ok=True)
    return RevpulseApp(
        settings.app_id,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store=f"{settings.table_store}://",
        datadir=str(settings.data_dir / "faust"),
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        table_standby_replicas=faust_standby_replicas(settings),
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=settings.session_timeout_seconds,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        stream_wait_empty=False,
    )


def intake_stage(settings: Settings, topics: Topics, ops: OpsMetrics) -> IntakeStage:
    kafka, events = settings.kafka_bootstrap, settings.events_topic
    return IntakeStage(
        policy=settings.policy(), max_future=settings.max_future(), events_topic=events,
        by_id=topics.by_id, by_id_partitions=settings.partitions,
        dead_letters=topics.dead_letters, ops=ops,
        committed_offset=lambda part: committed_offset(kafka, settings.app_id, events, part),
        read_events=lambda part, start, end: read_range(kafka, events, part, start, end),
        batch_max_events=settings.batch_max_events,
        batch_within_seconds=settings.batch_within_seconds,
    )  # fmt: skip


def partitioned_table(
    app: faust.App, settings: Settings, name: str
) -> Callable[[int], FaustLogTable]:
    """A table with a partition per events partition (the id gate's, the entity stage's):
    each partition's view."""
    table = app.Table(
        name, partitions=settings.partitions, key_type=bytes, value_type=bytes,
        options=GATE_ROCKSDB_OPTIONS if settings.table_store == "rocksdb" else None,
    )  # fmt: skip
    views: dict[int, FaustLogTable] = {}

    def table_for(partition: int) -> FaustLogTable:
        if partition not in views:
            views[partition] = FaustLogTable(table, partition=partition)
        return views[partition]

    return table_for


def entity_stage(
    app: faust.App,
    settings: Settings,
    topics: Topics,
    ops: OpsMetrics,
    table_for: Callable[[int], FaustLogTable],
    part_sink: PartSink | None,
    parts_health: PartsHealth,
) -> tuple[EntityStage, EntityParts | None]:
    """The entity stage, and what writes its partitions' parts of the state copy to
    ``part_sink`` (None: no part is written), its failures shown in ``parts_health``."""
    kafka = settings.kafka_bootstrap
    stage = EntityStage(
        policy=settings.policy(), partitions=settings.partitions, table_for=table_for,
        by_entity=topics.by_entity, facts=topics.facts, dead_letters=topics.dead_letters,
        ops=ops,
        read_by_entity=lambda part, start, end: read_range(
            kafka, settings.by_entity_topic, part, start, end
        ),
        recovery_done=lambda: recovery_done(app),
        read_changelog_end=lambda part: changelog_end_past_recovery(
            app, kafka, settings.entities_changelog_topic(), part
        ),
        count_parts=ops.entity_partitions.set,
        holds=lambda part: TP(settings.by_entity_topic, part) in app.assignor.assigned_actives(),
    )  # fmt: skip
    if part_sink is None:
        return stage, None
    clock = part_clock(settings.clock)
    return stage, EntityParts(
        stage=stage, sink=part_sink, ops=ops, health=parts_health, clock=clock
    )


def gate_stage(
    app: faust.App,
    settings: Settings,
    topics: Topics,
    ops: OpsMetrics,
    table_for: Callable[[int], FaustLogTable],
    sources: tuple[str, ...],
) -> GateStage:
    kafka = settings.kafka_bootstrap
    return GateStage(
        policy=settings.policy(), sources=sources, table_for=table_for, facts=topics.facts,
        dead_letters=topics.dead_letters, late=topics.late, ops=ops,
        read_by_id=lambda part, start, end: read_range(
            kafka, settings.by_id_topic, part, start, end
        ),
        recovery_done=lambda: recovery_done(app),
        read_changelog_end=lambda part: changelog_end_past_recovery(
            app, kafka, settings.gate_changelog_topic(), part
        ),
        by_entity=topics.by_entity if settings.entity_stage else None,
        entity_partitions=settings.partitions,
        holds=lambda part: TP(settings.by_id_topic, part) in app.assignor.assigned_actives(),
    )  # fmt: skip


def table_recovery(app: faust.App, settings: Settings, legacy_changelog: bool) -> TableRecovery:
    kafka = settings.kafka_bootstrap
    return TableRecovery(
        done=lambda: recovery_done(app),
        changelog_left=lambda: changelog_records_left(app),
        read_changelog_end=lambda: changelog_end_past_recovery(
            app, kafka, settings.changelog_topic()
        ),
        read_legacy_log=(
            (lambda: read_partition(kafka, settings.legacy_changelog_topic(), 0))
            if legacy_changelog
            else no_records
        ),
    )


def build_pipeline(
    settings: Settings,
    sinks: list[Sink],
    registry: CollectorRegistry,
    *,
    legacy_changelog: bool = False,
    part_sink: PartSink | None = None,
) -> Pipeline:
    """``legacy_changelog``: an earlier version's ledger-log changelog exists, migrated
    at the first load that has not done so. ``part_sink``: where the entity partitions
    write their parts of the state copy (REVPULSE_ENTITY_STAGE; None: none written)."""
    app = faust_app(settings)
    ops = build_ops_metrics(registry)
    register_ingest_routes(app, settings, registry)  # POST /v1/events, /openapi.json
    sources = tuple(str(partition) for partition in range(settings.partitions))
    owner = LedgerOwner(settings.policy(), settings.clock, settings.band_window,
                        publish_share=0.25, sources=sources)  # fmt: skip
    topics = Topics.declare(app, settings)
    # bytes key and value types make faust use the raw codec for the changelog
    table = FaustLogTable(
        app.Table(
            LEDGER_STATE_TABLE, partitions=1, key_type=bytes, value_type=bytes,
            options=ROCKSDB_OPTIONS if settings.table_store == "rocksdb" else None,
        )
    )  # fmt: skip
    every_sink = [*sinks, AlertsTopicSink(topics.alerts)]
    for step in ("compute", "other", *(sink.name for sink in every_sink)):
        ops.publish_failures.labels(step)  # exported at 0 from the start
    ledger = LedgerStage(
        owner=owner, table=table, dead_letters=topics.dead_letters, late=topics.late, ops=ops,
        read_facts=lambda part, start, end: read_range(
            settings.kafka_bootstrap, settings.facts_topic, part, start, end
        ),
        recovery=table_recovery(app, settings, legacy_changelog),
    )  # fmt: skip
    facts_tp = TP(settings.facts_topic, 0)
    publisher = Publisher(
        ledger=ledger, sinks=every_sink, table=table, ops=ops, health=PublishHealth(),
        owns_ledger=lambda: facts_tp in app.assignor.assigned_actives(),
    )  # fmt: skip
    probes = ReadinessProbes(
        settings.kafka_bootstrap, settings.redis_url.get_secret_value(), settings.app_id
    )
    web = WebPages(
        registry=registry, probes=probes, recovery_problem=ledger.recovery_problem, owner=owner,
        health=publisher.health, parts_health=PartsHealth(),  # empty without entity parts
    )  # fmt: skip
    gate_table = partitioned_table(app, settings, ID_GATE_TABLE)
    gate = gate_stage(app, settings, topics, ops, gate_table, sources)
    entity_table = entities = parts = None
    if settings.entity_stage:
        entity_table = partitioned_table(app, settings, ENTITIES_TABLE)
        entities, parts = entity_stage(app, settings, topics, ops, entity_table, part_sink,
                                       web.parts_health)  # fmt: skip
    pipeline = Pipeline(
        app, owner, intake_stage(settings, topics, ops), gate, ledger, publisher, web, ops,
        table, gate_table, entities, entity_table, parts,
    )  # fmt: skip
    register(app, settings, topics, pipeline)
    return pipeline


def register(app: faust.App, settings: Settings, topics: Topics, pipeline: Pipeline) -> None:
    """The stages' agents, timers, tasks and pages; the sinks closed when the app stops."""
    # mode's signal type wants the receiver's first argument positional-only
    app.on_partitions_revoked.connect(pipeline.intake.forget_revoked)  # type: ignore[arg-type]
    app.on_partitions_revoked.connect(pipeline.gate.forget_revoked)  # type: ignore[arg-type]
    app.agent(topics.events, name="intake")(pipeline.intake.run)
    app.agent(topics.by_id, name="gate")(pipeline.gate.run)
    app.timer(GATE_FLUSH_AFTER_SECONDS / 2, name="gate_flush")(pipeline.gate.flush_idle)
    if pipeline.entities is not None:
        entities = pipeline.entities
        app.on_partitions_revoked.connect(entities.forget_revoked)  # type: ignore[arg-type]
        app.agent(topics.by_entity, name="entities")(entities.run)
        app.timer(GATE_FLUSH_AFTER_SECONDS / 2, name="entities_flush")(entities.flush_idle)
    if pipeline.entity_parts is not None:
        parts = pipeline.entity_parts
        app.on_partitions_revoked.connect(parts.forget_revoked)  # type: ignore[arg-type]
        app.timer(settings.publish_interval_seconds, name="entity_parts")(parts.tick)
        app.task(parts.start)
    app.agent(topics.facts, name="ledger")(pipeline.ledger.run)
    app.timer(settings.publish_interval_seconds, name="publisher")(pipeline.publisher.tick)
    probes = Probes(app, pipeline.ops)
    app.task(probes.loop_lag)
    app.timer(CONSUMER_LAG_EVERY_SECONDS, name="lag_probe")(probes.consumer_lag)
    app.task(pipeline.publisher.start_sinks)
    app.on_before_shutdown.connect(pipeline.close_sinks)  # type: ignore[arg-type]
    pipeline.web.register(app)
    follow_standbys(app, settings, pipeline)
