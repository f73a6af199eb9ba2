"""The worker's own pages: /metrics (Prometheus), /healthz (alive) and /readyz (ready,
and if not, which part is not)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from streams.pipeline.health import PartsHealth, PublishHealth
from streams.pipeline.owner import LedgerOwner

# aiohttp wants the charset apart from the content type
METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST.split(";")[0] + "; version=0.0.4"


class Readiness(Protocol):
    async def readiness(
        self,
        recovery_problem: str | None,
        *,
        owns_ledger: bool,
        publish_problem: str | None = None,
        entity_parts_problem: str | None = None,
    ) -> tuple[bool, dict[str, Any]]: ...

    async def close(self) -> None: ...


class WebPages:
    def __init__(
        self,
        *,
        registry: CollectorRegistry,
        probes: Readiness,
        recovery_problem: Callable[[], str | None],
        owner: LedgerOwner,
        health: PublishHealth,
        parts_health: PartsHealth,
    ) -> None:
        """``parts_health``: the writes of the entity parts this worker holds (empty when
        it writes none)."""
        self.registry = registry
        self.probes = probes
        self.recovery_problem = recovery_problem
        self.owner = owner
        self.health = health
        self.parts_health = parts_health
        self._web: Any = None

    def register(self, app: Any) -> None:
        """Add the three pages to the Faust app's web server, which closes the probes."""
        self._web = app.web
        app.page("/metrics")(self.metrics_page)
        app.page("/healthz")(self.healthz_page)
        app.page("/readyz")(self.readyz_page)
        app.web.web_app.on_cleanup.append(self.close_probes)  # aiohttp under Faust

    async def close_probes(self, _web_app: Any) -> None:
        await self.probes.close()

    async def metrics(self) -> bytes:
        # in a thread: a large registry takes a while to render
        return await asyncio.to_thread(generate_latest, self.registry)

    def healthz(self) -> dict[str, str]:
        return {"status": "alive"}

    async def readyz(self) -> tuple[int, dict[str, Any]]:
        """Ready = recovery done (the table read, the ledger rebuilt), Kafka and Redis
        reachable, publishing not failing and no entity part's write failing: the status,
        and the body naming each part that is not."""
        ready, body = await self.probes.readiness(
            self.recovery_problem(),
            owns_ledger=self.owner.ready,
            publish_problem=self.health.problem(),
            entity_parts_problem=self.parts_health.problem(),
        )
        return (200 if ready else 503), body

    # Faust calls a page's handler with the request only: a bound method keeps its self
    async def metrics_page(self, _request: Any) -> Any:
        return self._web.bytes(await self.metrics(), content_type=METRICS_CONTENT_TYPE)

    async def healthz_page(self, _request: Any) -> Any:
        return self._web.json(self.healthz())

    async def readyz_page(self, _request: Any) -> Any:
        status, body = await self.readyz()
        return self._web.json(body, status=status)
