"""Readiness for /readyz: can this worker reach Kafka and Redis, does it publish, and does
it write the entity parts of the state copy it holds?"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from aiokafka import AIOKafkaClient

log = logging.getLogger(__name__)
PROBE_TIMEOUT_SECONDS = 2.0
# the parts /readyz judges, each "ok" or what is wrong; its body has a key for each
READINESS_PARTS = ("kafka", "redis", "recovery", "publish", "entity_parts")
# a part's value on the pages served while the worker starts (streams.pipeline.start_pages),
# before anything but the recovery is checked: not ready, but not found failing either
NOT_STARTED = "not started yet"


@dataclass
class PublishHealth:
    """Whether the last publish failed, since when and why (None: it did not)."""

    failing_since_seconds: float | None = None
    error: str | None = None

    def failed(self, now_seconds: float, error: str) -> None:
        if self.failing_since_seconds is None:
            self.failing_since_seconds = now_seconds
        self.error = error

    def succeeded(self) -> None:
        self.failing_since_seconds = None
        self.error = None

    def problem(self) -> str | None:
        """What /readyz says while publishing fails."""
        if self.failing_since_seconds is None:
            return None
        return f"publish failing since {utc_text(self.failing_since_seconds)}: {self.error}"


@dataclass
class PartsHealth:
    """Per part of the state copy this worker writes besides the ledger's (the entity
    partitions' parts), whether its last write failed: since when and why. Apart from
    PublishHealth, which a worker that does not own the ledger clears on every tick."""

    failing: dict[str, tuple[float, str]] = field(default_factory=dict)  # since, error

    def failed(self, part: str, now_seconds: float, error: str) -> None:
        since, _error = self.failing.get(part, (now_seconds, error))
        self.failing[part] = (since, error)

    def clear(self, part: str) -> None:
        """``part`` was written again, or is no longer written by this worker."""
        self.failing.pop(part, None)

    def problem(self) -> str | None:
        """What /readyz says while a part's writes fail: each such part, in name order."""
        if not self.failing:
            return None
        return "; ".join(
            f"{part} failing since {utc_text(since)}: {error}"
            for part, (since, error) in sorted(self.failing.items(), key=_part_order)
        )


def _part_order(item: tuple[str, Any]) -> tuple[str, int]:
    """``entities-2`` before ``entities-10``: by name, then partition number."""
    name, _, number = item[0].rpartition("-")
    return (name, int(number)) if number.isdigit() else (item[0], -1)


def utc_text(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="seconds")


class ReadinessProbes:
    """One long-lived Kafka client and Redis connection, each asked one cheap question."""

    def __init__(self, kafka_bootstrap: str, redis_url: str, client_id: str) -> None:
        self._kafka_bootstrap = kafka_bootstrap
        self._redis_url = redis_url
        self._client_id = client_id
        self._kafka: Any = None
        self._redis: aioredis.Redis | None = None

    async def kafka(self) -> str | None:
        """None when a broker answered a metadata request, else what went wrong."""
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
                if self._kafka is None:
                    client = AIOKafkaClient(
                        bootstrap_servers=self._kafka_bootstrap,
                        client_id=f"{self._client_id}-readyz",
                        request_timeout_ms=int(PROBE_TIMEOUT_SECONDS * 1000),
                    )
                    self._kafka = client
                    await client.bootstrap()
                metadata = await self._kafka.fetch_all_metadata()
                if not metadata.brokers():
                    return "no broker in the cluster metadata"
        except Exception as error:  # any failure means "not reachable"
            await self._close_kafka()
            return f"unreachable: {type(error).__name__}"
        return None

    async def redis(self) -> str | None:
        """None when Redis answered PING, else what went wrong (never the URL: it is a secret)."""
        try:
            if self._redis is None:
                self._redis = aioredis.Redis.from_url(
                    self._redis_url,
                    socket_timeout=PROBE_TIMEOUT_SECONDS,
                    socket_connect_timeout=PROBE_TIMEOUT_SECONDS,
                )
            async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
                await self._redis.ping()
        except Exception as error:
            return f"unreachable: {type(error).__name__}"
        return None

    async def check(self) -> dict[str, str]:
        """``{"kafka": "ok" | problem, "redis": "ok" | problem}``."""
        kafka, redis = await asyncio.gather(self.kafka(), self.redis())
        return {"kafka": kafka or "ok", "redis": redis or "ok"}

    async def readiness(
        self,
        recovery_problem: str | None,
        *,
        owns_ledger: bool,
        publish_problem: str | None = None,
        entity_parts_problem: str | None = None,
    ) -> tuple[bool, dict[str, Any]]:
        """The verdict of /readyz and its JSON body, naming every part that is not ready
        (a key for each of READINESS_PARTS); ``recovery_problem`` is what the recovery is
        still doing (None: done)."""
        parts = await self.check()
        parts["recovery"] = recovery_problem or "ok"
        parts["publish"] = publish_problem or "ok"
        parts["entity_parts"] = entity_parts_problem or "ok"
        not_ready = sorted(name for name, state in parts.items() if state != "ok")
        body: dict[str, Any] = {
            "ready": not not_ready,
            "not_ready": not_ready,
            "recovery_done": recovery_problem is None,
            "owns_ledger": owns_ledger,
            **parts,
        }
        return not not_ready, body

    async def _close_kafka(self) -> None:
        client, self._kafka = self._kafka, None
        if client is not None:
            try:
                await client.close()
            except Exception:
                log.debug("closing the readiness Kafka client failed", exc_info=True)

    async def close(self) -> None:
        await self._close_kafka()
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
