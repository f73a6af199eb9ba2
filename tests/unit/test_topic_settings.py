"""The replication factor and the standby replicas reach the topics and the Faust app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from models.errors import ConfigError
from streams.kafka.topics import check_entity_stage_switch, new_topic, topic_specs
from streams.pipeline.app import build_pipeline
from streams.pipeline.standby import StandbyFollower
from streams.settings import Settings


def test_every_topic_is_created_with_the_configured_replication_factor() -> None:
    settings = Settings(replication_factor=3, insecure_dev_mode=True)
    created = {spec.name: new_topic(spec, settings) for spec in topic_specs(settings)}
    assert {topic.replication_factor for topic in created.values()} == {3}
    assert created[settings.events_topic].num_partitions == settings.partitions
    assert created[settings.facts_topic].num_partitions == 1
    changelog = created[settings.changelog_topic()]
    assert changelog.topic_configs == {"cleanup.policy": "compact"}
    assert created[settings.events_topic].topic_configs == {}


def test_defaults_suit_the_embedded_broker() -> None:
    settings = Settings(insecure_dev_mode=True)
    assert settings.replication_factor == 1
    assert settings.table_standby_replicas == 1


def followers(app: Any) -> list[StandbyFollower]:
    """The standby followers connected to the app's assignment signal."""
    receivers = app.on_partitions_assigned.iter_receivers(app)
    return [
        r.__self__ for r in receivers if isinstance(getattr(r, "__self__", None), StandbyFollower)
    ]


@pytest.mark.parametrize("replicas", [0, 2])
def test_standby_replicas_are_revpulse_s_follower_on_rocksdb(tmp_path: Path, replicas: int) -> None:
    """On RocksDB the workers follow the changelogs themselves (streams.pipeline.standby),
    so Faust's own standby replicas are off; on the memory store they are the setting's."""
    for store, faust_replicas, followed in (
        ("rocksdb", 0, replicas > 0),
        ("memory", replicas, False),
    ):
        settings = Settings(
            data_dir=tmp_path / store, table_store=store, table_standby_replicas=replicas,
            replication_factor=3, insecure_dev_mode=True,
        )  # fmt: skip
        app = build_pipeline(settings, sinks=[], registry=CollectorRegistry()).app
        try:
            assert app.conf.table_standby_replicas == faust_replicas
            assert app.conf.topic_replication_factor == 3
            assert len(followers(app)) == (1 if followed else 0), store
        finally:
            app.loop.close()


def test_a_deployment_is_not_switched_to_or_from_the_entity_stage() -> None:
    plain = Settings(app_id="rp", insecure_dev_mode=True)
    spread = Settings(app_id="rp", entity_stage=True, insecure_dev_mode=True)
    ledger, entities = plain.changelog_topic(), plain.entities_changelog_topic()
    check_entity_stage_switch(plain, set())  # a new deployment, either way
    check_entity_stage_switch(spread, set())
    check_entity_stage_switch(plain, {ledger})
    check_entity_stage_switch(spread, {ledger, entities})
    with pytest.raises(ConfigError, match="ran without it"):
        check_entity_stage_switch(spread, {ledger})
    with pytest.raises(ConfigError, match="ran with it"):
        check_entity_stage_switch(plain, {ledger, entities})


def test_the_entity_stage_topics_are_made_only_when_it_is_on() -> None:
    plain = Settings(app_id="rp", insecure_dev_mode=True)
    spread = plain.model_copy(update={"entity_stage": True})
    names = {spec.name for spec in topic_specs(plain)}
    added = {spec.name for spec in topic_specs(spread)} - names
    assert added == {"revpulse-by-entity", "rp-entities-changelog"}
