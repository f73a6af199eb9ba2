"""Two workers in one consumer group publish the same global figures as one worker."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.integration.scenario import EXPECTED, SCENARIO
from tests.integration.test_end_to_end import prometheus_values, redis_values, send
from tests.integration.workers import WorkerHandle, isolated_settings, start_worker, wait_for

pytestmark = pytest.mark.timeout(300)


def _owner_flag(worker: WorkerHandle) -> float | None:
    return prometheus_values(worker.metrics_text()).get(("revpulse_ledger_owner", ()))


def test_two_workers_publish_the_figures_of_one(kafka: str, redis_url: str, tmp_path: Path) -> None:
    settings = isolated_settings(kafka, redis_url)
    first = start_worker(settings, tmp_path, name="first")
    second = start_worker(settings, tmp_path, name="second")
    workers = [first, second]
    try:
        # after the rebalance, exactly one worker owns the ledger
        wait_for(
            lambda: sorted(_owner_flag(w) or 0 for w in workers) == [0, 1],
            timeout_seconds=90,
            what="exactly one ledger owner",
        )
        asyncio.run(send(settings, SCENARIO + SCENARIO[:4], []))
        wait_for(
            lambda: redis_values(settings).get(("spend", "30d", "all", "all")) == 4000,
            timeout_seconds=90,
            what="all events applied",
        )
        values = redis_values(settings)
        for series, expected in EXPECTED.items():
            assert values.get(series) == expected, series

        # the intake ran on both workers: the events topic has 4 partitions
        consumed = [
            sum(
                value
                for (name, _labels), value in prometheus_values(w.metrics_text()).items()
                if name == "revpulse_events_consumed_total"
            )
            for w in workers
        ]
        assert sum(consumed) == len(SCENARIO) + 4

        # business gauges come only from the owner: max over workers is the global value
        arr_samples = [
            prometheus_values(w.metrics_text()).get(
                ("revpulse_arr", (("channel", "all"), ("origin", "all"), ("window", "point")))
            )
            for w in workers
        ]
        assert sorted(arr_samples, key=lambda v: v is not None) == [None, 16000]

        # the owner crashes: the other worker takes the ledger over from its changelog
        owner, survivor = (first, second) if _owner_flag(first) == 1 else (second, first)
        owner.kill()
        more_spend = dict(SCENARIO[9], event_id="e11", data={**SCENARIO[9]["data"], "amount": 500})
        asyncio.run(send(settings, [*SCENARIO, more_spend], []))
        wait_for(
            lambda: (
                _owner_flag(survivor) == 1
                and redis_values(settings).get(("spend", "30d", "all", "all")) == 4500
            ),
            timeout_seconds=120,
            what="the survivor owns the ledger and applied the new spend",
        )
        values = redis_values(settings)
        for series, expected in EXPECTED.items():
            if series[0] not in ("spend", "cac"):
                assert values.get(series) == expected, series
        assert values[("cac", "30d", "all", "all")] == 2250  # 4,500 / 2 new customers
    finally:
        for worker in workers:
            worker.stop()
