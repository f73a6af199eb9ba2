"""Explicit topic creation: Tansu would auto-create 4 partitions, Faust needs exact counts."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from models.errors import ConfigError
from streams.errors import StackError
from streams.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    compacted: bool = False  # a table's changelog: one record per key is enough


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic revpulse uses. The id gate's input and changelog have a partition per
    events partition; the ledger and its changelog have one partition each."""
    entities = [
        TopicSpec(settings.by_entity_topic, settings.partitions),
        TopicSpec(settings.entities_changelog_topic(), settings.partitions, compacted=True),
    ]
    return [
        *(entities if settings.entity_stage else []),
        TopicSpec(settings.events_topic, settings.partitions),
        TopicSpec(settings.dead_letter_topic, settings.partitions),
        TopicSpec(settings.by_id_topic, settings.partitions),
        TopicSpec(settings.gate_changelog_topic(), settings.partitions, compacted=True),
        TopicSpec(settings.facts_topic, 1),
        TopicSpec(settings.changelog_topic(), 1, compacted=True),
        TopicSpec(settings.late_topic, 1),
        TopicSpec(settings.alerts_topic, 1),
    ]


def new_topic(spec: TopicSpec, settings: Settings) -> NewTopic:
    """The creation request for ``spec``: REVPULSE_REPLICATION_FACTOR copies of each
    partition (1 on the embedded broker, 3 on a real cluster), a changelog compacted."""
    configs = {"cleanup.policy": "compact"} if spec.compacted else {}
    return NewTopic(spec.name, spec.partitions, settings.replication_factor, topic_configs=configs)


def check_entity_stage_switch(settings: Settings, existing: set[str]) -> None:
    """The entities live either with the ledger or in the entity stage, and nothing moves
    them from one to the other: a deployment is not switched either way. Which way it
    ran shows in which changelogs exist."""
    ledger = settings.changelog_topic()
    entities = settings.entities_changelog_topic()
    if settings.entity_stage and ledger in existing and entities not in existing:
        raise ConfigError(
            f"REVPULSE_ENTITY_STAGE is on, but this deployment ran without it ({ledger} "
            f"exists, {entities} does not): the entities its ledger holds would not be "
            "moved to the entity stage. Keep REVPULSE_ENTITY_STAGE off, or start a new "
            "deployment (another REVPULSE_APP_ID) and replay the history into it"
        )
    if not settings.entity_stage and entities in existing:
        raise ConfigError(
            f"REVPULSE_ENTITY_STAGE is off, but this deployment ran with it ({entities} "
            "exists): its entities are in the entity stage. Keep REVPULSE_ENTITY_STAGE on"
        )


async def ensure_topics(settings: Settings, timeout_seconds: float = 30.0) -> None:
    """Create missing topics; check that existing ones have the partitions we need."""
    deadline = asyncio.get_running_loop().time() + timeout_seconds
    waited = False
    while True:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=settings.kafka_bootstrap, client_id=f"{settings.app_id}-admin"
        )
        try:
            await admin.start()
            break
        except KafkaError as error:
            if not waited:
                log.warning(
                    "Kafka at %s is not reachable yet; retrying for up to %.0f s",
                    settings.kafka_bootstrap,
                    timeout_seconds,
                )
                waited = True
            if asyncio.get_running_loop().time() > deadline:
                raise StackError(
                    f"Kafka at {settings.kafka_bootstrap} unreachable: {error}"
                ) from error
            await asyncio.sleep(0.5)
    try:
        existing = set(await admin.list_topics())
        check_entity_stage_switch(settings, existing)
        wanted = topic_specs(settings)
        missing = [spec for spec in wanted if spec.name not in existing]
        for spec in missing:
            try:
                await admin.create_topics([new_topic(spec, settings)])
                log.info("created topic %s with %d partitions", spec.name, spec.partitions)
            except TopicAlreadyExistsError:
                pass
        described = await admin.describe_topics([spec.name for spec in wanted])
        counts = {item["topic"]: len(item["partitions"]) for item in described}
        for spec in wanted:
            if counts.get(spec.name) != spec.partitions:
                raise StackError(
                    f"topic {spec.name} has {counts.get(spec.name)} partitions, "
                    f"revpulse needs {spec.partitions}"
                )
    finally:
        await admin.close()
