"""Two workers in one consumer group publish the same global figures as one worker."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.scenario import EXPECTED, SCENARIO
from tests.integration.test_end_to_end import prometheus_values, send, wait_for_figures
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
        wait_for_figures(settings, EXPECTED)

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

        # the id gate ran on both workers, each on its own by-id partitions and ids
        def gate_value(worker: WorkerHandle, name: str) -> float:
            return prometheus_values(worker.metrics_text()).get((name, ()), 0.0)

        held = [gate_value(w, "revpulse_id_gate_partitions") for w in workers]
        admitted = [gate_value(w, "revpulse_id_gate_admitted_events_total") for w in workers]
        assert all(count >= 1 for count in held) and sum(held) == 4, held
        assert all(count >= 1 for count in admitted), admitted
        assert sum(admitted) == len({event["event_id"] for event in SCENARIO})

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
        after_crash = {s: v for s, v in EXPECTED.items() if s[0] not in ("spend", "cac")}
        after_crash[("spend", "30d", "all", "all")] = Decimal(4500)
        after_crash[("cac", "30d", "all", "all")] = Decimal(2250)  # 4,500 / 2 new customers
        wait_for_figures(settings, after_crash, timeout_seconds=120)
        assert _owner_flag(survivor) == 1
    finally:
        for worker in workers:
            worker.stop()
