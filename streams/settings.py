"""All settings, read once from REVPULSE_* environment variables at the entry point."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.events import RESERVED_LABELS
from models.policy import BandThresholds, MetricPolicy

ROLLING_WINDOW = re.compile(r"[1-9][0-9]*d")
LEDGER_STATE_TABLE = "ledger-state"  # the ledger's table; its changelog is named after it
ID_GATE_TABLE = "id-gate"  # event ids and lateness marks, one partition per by-id partition
ENTITIES_TABLE = "entities"  # leads, contracts, accounts: one partition per by-entity one
# the table of every accepted event in earlier versions: migrated once
LEGACY_LOG_TABLE = "ledger-log"
DEFAULT_DEDUP_HORIZON_SECONDS = 14 * 86400


class Settings(BaseSettings):
    """Every field is REVPULSE_<NAME> in the environment; docs/settings.md describes each."""

    model_config = SettingsConfigDict(env_prefix="REVPULSE_", extra="ignore")

    # where things are
    kafka_bootstrap: str = "127.0.0.1:9092"
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    app_id: str = "revpulse"
    web_host: str = "127.0.0.1"
    web_port: int = Field(6066, ge=1, le=65535)
    data_dir: Path = Path(".revpulse")  # one per worker: its local table store is here
    # where a worker keeps its table locally: rocksdb (on disk, in the data directory; a
    # restart reads only the changelog's tail) or memory (the whole changelog every start)
    table_store: Literal["rocksdb", "memory"] = "rocksdb"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    # topics
    events_topic: str = "revpulse-events"
    by_id_topic: str = "revpulse-by-id"
    by_entity_topic: str = "revpulse-by-entity"
    facts_topic: str = "revpulse-facts"
    dead_letter_topic: str = "revpulse-dead-letters"
    late_topic: str = "revpulse-late-events"
    alerts_topic: str = "revpulse-alerts"
    partitions: int = Field(4, ge=1, le=256)
    replication_factor: int = Field(1, ge=1)
    # 1 or more: each worker keeps a copy of the table partitions it does not hold, read
    # from their changelogs, ready to take them over (streams.pipeline.standby); 0: none
    table_standby_replicas: int = Field(1, ge=0)

    # processing
    # leads, contracts and accounts spread over partitions by key (the entity stage),
    # instead of kept with the ledger: for a new deployment (a ledger that holds
    # entities already is not moved over)
    entity_stage: bool = False
    # events per facts message at most: 1,000 of up to ~1 KB stay within Kafka's 1 MB limit
    batch_max_events: int = Field(500, ge=1, le=1000)
    batch_within_seconds: float = Field(0.2, gt=0)
    publish_interval_seconds: float = Field(1.0, gt=0)
    fetch_max_wait_ms: int = Field(100, ge=0, le=30_000)
    session_timeout_seconds: float = Field(10.0, ge=6)
    clock: Literal["wall", "event"] = "wall"
    # how far an event's occurred_at may be ahead of the wall clock at intake
    max_future_seconds: int = Field(86400, ge=0)

    # metric policies
    # the band's window (<N>d) must be one of window_days, else the band is never computed
    band_window: str = "30d"
    window_days: list[int] = [7, 30, 90, 365]
    lateness_seconds: int = Field(7 * 86400, ge=0)
    # how long an accepted event_id is remembered for dedup, past its event's day, behind
    # the slowest partition's mark: never less than the lateness (unset: 14 days, or the
    # lateness if longer)
    dedup_horizon_seconds: int | None = Field(None, ge=0)
    retention_days: int = Field(800, ge=1)
    include_one_time_fees: bool = False
    sub_year_policy: Literal["annualize", "cap_at_tcv"] = "annualize"
    reporting_currency: str = Field("USD", pattern=r"^[A-Z]{3}$")
    fx_rates: dict[str, Decimal] = {}
    band_strong_min: Decimal = Decimal(1_000_000)
    band_moderate_min: Decimal = Decimal(500_000)
    band_hysteresis_ratio: Decimal = Decimal("0.02")
    # distinct channels with their own series; later ones are counted under "overflow"
    max_channels: int = Field(100, ge=1)
    channel_allowlist: list[str] = []

    # sinks
    redis_prefix: str = "revpulse"
    history_length: int = Field(1000, ge=1)

    # HTTP ingestion (docs/ingestion.md); secrets are JSON lists, newest first
    ingest_secrets: list[SecretStr] = []
    ingest_source_secrets: dict[str, list[SecretStr]] = {}
    ingest_signature_tolerance_seconds: int = Field(300, ge=1)
    ingest_max_body_bytes: int = Field(5 * 1024 * 1024, ge=1024)
    ingest_ack_timeout_seconds: float = Field(10.0, gt=0)
    ingest_retry_after_seconds: int = Field(5, ge=1)
    ingest_url: str | None = None
    ingest_source: str | None = None
    insecure_dev_mode: bool = False

    @field_validator("band_window")
    @classmethod
    def _rolling_band_window(cls, value: str) -> str:
        if not ROLLING_WINDOW.fullmatch(value):
            raise ValueError(f"must be a rolling window of whole days like 30d, not {value!r}")
        return value

    @field_validator("window_days")
    @classmethod
    def _band_window_published(cls, value: list[int], info: ValidationInfo) -> list[int]:
        band_window = info.data.get("band_window")  # absent when it was refused itself
        if band_window is not None and int(band_window[:-1]) not in value:
            raise ValueError(
                f"{value} leaves out {band_window[:-1]}, the days of REVPULSE_BAND_WINDOW="
                f"{band_window}: add it, or set REVPULSE_BAND_WINDOW to one of these windows"
            )
        return value

    @field_validator("dedup_horizon_seconds")
    @classmethod
    def _horizon_covers_lateness(cls, value: int | None, info: ValidationInfo) -> int | None:
        lateness = info.data.get("lateness_seconds")  # absent when it was refused itself
        if value is not None and lateness is not None and value < lateness:
            raise ValueError(
                f"{value} is shorter than REVPULSE_LATENESS_SECONDS={lateness}: an event id "
                "forgotten within the lateness would let a re-sent event count twice; set "
                "it to at least the lateness"
            )
        return value

    @field_validator("channel_allowlist")
    @classmethod
    def _no_reserved_channel(cls, value: list[str]) -> list[str]:
        if reserved := sorted({name.lower() for name in value} & RESERVED_LABELS):
            raise ValueError(
                f"names reserved labels {reserved}: revpulse uses them itself "
                "(all: every channel together; overflow: the channels past the cap)"
            )
        return value

    def policy(self) -> MetricPolicy:
        return MetricPolicy(
            include_one_time_fees=self.include_one_time_fees,
            sub_year=self.sub_year_policy,
            reporting_currency=self.reporting_currency,
            fx_rates=dict(self.fx_rates),
            lateness=dt.timedelta(seconds=self.lateness_seconds),
            dedup_horizon=self.dedup_horizon(),
            window_days=tuple(self.window_days),
            retention_days=self.retention_days,
            bands=BandThresholds(
                self.band_strong_min, self.band_moderate_min, self.band_hysteresis_ratio
            ),
            max_channels=self.max_channels,
            channel_allowlist=frozenset(name.lower() for name in self.channel_allowlist),
        )

    def dedup_horizon(self) -> dt.timedelta:
        """The one set, else the default, or the lateness if that is longer."""
        seconds = self.dedup_horizon_seconds
        if seconds is None:
            seconds = max(DEFAULT_DEDUP_HORIZON_SECONDS, self.lateness_seconds)
        return dt.timedelta(seconds=seconds)

    def max_future(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.max_future_seconds)

    def changelog_topic(self) -> str:
        return f"{self.app_id}-{LEDGER_STATE_TABLE}-changelog"

    def gate_changelog_topic(self) -> str:
        return f"{self.app_id}-{ID_GATE_TABLE}-changelog"

    def entities_changelog_topic(self) -> str:
        return f"{self.app_id}-{ENTITIES_TABLE}-changelog"

    def legacy_changelog_topic(self) -> str:
        """The ledger-log changelog an earlier version wrote, migrated once if present."""
        return f"{self.app_id}-{LEGACY_LOG_TABLE}-changelog"
