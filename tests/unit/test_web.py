"""The worker's pages without a server: /readyz's status and body from the stages' state,
/metrics from the registry, /healthz."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

from models.keyed import MemoryMaps
from models.policy import MetricPolicy
from sinks.ops_metrics import build_ops_metrics
from streams.pipeline.app import build_pipeline
from streams.pipeline.health import PartsHealth, PublishHealth, ReadinessProbes
from streams.pipeline.owner import LedgerOwner
from streams.pipeline.web import METRICS_CONTENT_TYPE, WebPages
from streams.settings import Settings


class ReachableProbes(ReadinessProbes):
    """The real readiness verdict, with Kafka and Redis answering as told."""

    def __init__(self, kafka: str = "ok", redis: str = "ok") -> None:
        super().__init__("localhost:1", "redis://localhost:1", "test")
        self.parts = {"kafka": kafka, "redis": redis}

    async def check(self) -> dict[str, str]:
        return dict(self.parts)


class Harness:
    def __init__(self, probes: ReadinessProbes | None = None) -> None:
        self.registry = CollectorRegistry()
        self.ops = build_ops_metrics(self.registry)
        self.owner = LedgerOwner(MetricPolicy(), "wall", "30d")
        self.health = PublishHealth()
        self.parts_health = PartsHealth()
        self.recovery: str | None = None
        self.pages = WebPages(
            registry=self.registry,
            probes=probes or ReachableProbes(),
            recovery_problem=lambda: self.recovery,
            owner=self.owner,
            health=self.health,
            parts_health=self.parts_health,
        )


async def test_ready_when_every_part_is() -> None:
    harness = Harness()
    harness.owner.install(harness.owner.load(MemoryMaps()))
    status, body = await harness.pages.readyz()
    assert status == 200
    assert body == {
        "ready": True, "not_ready": [], "recovery_done": True, "owns_ledger": True,
        "kafka": "ok", "redis": "ok", "recovery": "ok", "publish": "ok", "entity_parts": "ok",
    }  # fmt: skip


async def test_not_ready_names_each_part_that_is_not() -> None:
    harness = Harness(ReachableProbes(redis="unreachable: ConnectionError"))
    harness.recovery = "table recovery in progress: 12 changelog records left to read"
    harness.health.failed(1_767_225_600.0, "redis: connection refused")  # 2026-01-01
    status, body = await harness.pages.readyz()
    assert status == 503
    assert body["ready"] is False
    assert body["not_ready"] == ["publish", "recovery", "redis"]
    assert body["recovery"] == "table recovery in progress: 12 changelog records left to read"
    assert body["recovery_done"] is False
    assert body["publish"] == (
        "publish failing since 2026-01-01T00:00:00+00:00: redis: connection refused"
    )
    assert body["owns_ledger"] is False  # no ledger rebuilt on this worker


async def test_publish_recovering_makes_the_worker_ready_again() -> None:
    harness = Harness()
    harness.health.failed(1_767_225_600.0, "compute: RuntimeError: x")
    assert (await harness.pages.readyz())[0] == 503
    harness.health.succeeded()
    assert (await harness.pages.readyz())[0] == 200


async def test_failing_entity_parts_are_each_named_with_since_when_and_why() -> None:
    harness = Harness()
    harness.parts_health.failed("entities-2", 1_767_225_660.0, "redis: TimeoutError: x")
    harness.parts_health.failed("entities-0", 1_767_225_600.0, "redis: ConnectionError: y")
    status, body = await harness.pages.readyz()
    assert status == 503 and body["not_ready"] == ["entity_parts"]
    assert body["entity_parts"] == (
        "entities-0 failing since 2026-01-01T00:00:00+00:00: redis: ConnectionError: y; "
        "entities-2 failing since 2026-01-01T00:01:00+00:00: redis: TimeoutError: x"
    )
    harness.parts_health.clear("entities-0")
    harness.parts_health.clear("entities-2")
    assert (await harness.pages.readyz())[0] == 200


async def test_metrics_render_the_registry() -> None:
    harness = Harness()
    harness.ops.publish_failures.labels("redis").inc()
    body = (await harness.pages.metrics()).decode()
    assert 'revpulse_publish_failures_total{step="redis"} 1.0' in body
    assert METRICS_CONTENT_TYPE == "text/plain; version=0.0.4"


def test_healthz_says_alive() -> None:
    assert Harness().pages.healthz() == {"status": "alive"}


def test_the_built_worker_serves_the_pages_and_runs_the_three_agents(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, insecure_dev_mode=True)
    app = build_pipeline(settings, sinks=[], registry=CollectorRegistry()).app
    try:
        paths = {resource.canonical for resource in app.web.web_app.router.resources()}
        assert {"/metrics", "/healthz", "/readyz", "/v1/events"} <= paths
        assert sorted(app.agents) == ["gate", "intake", "ledger"]
    finally:  # the loops Faust made for the app and the consumer thread
        app.consumer._thread.thread_loop.close()  # type: ignore[attr-defined]
        app.loop.close()
