"""A worker killed mid-stream: its successor on the same data directory rebuilds the
ledger from its local table store and the changelog's tail (none here), exactly."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.integration.scenario import EXPECTED, SCENARIO
from tests.integration.test_end_to_end import (
    prometheus_values,
    redis_values,
    send,
    wait_for_figures,
)
from tests.integration.workers import WorkerHandle, isolated_settings, start_worker, wait_for

pytestmark = pytest.mark.timeout(300)


def ledger_events(worker: WorkerHandle) -> float | None:
    return prometheus_values(worker.metrics_text()).get(("revpulse_ledger_events", ()))


def test_crash_and_restart_keeps_exact_figures(kafka: str, redis_url: str, tmp_path: Path) -> None:
    settings = isolated_settings(kafka, redis_url)
    first = start_worker(settings, tmp_path, name="first")
    try:
        # three sends, so the changelog holds several records (Tansu highwater quirk)
        sent = 0
        for chunk in (SCENARIO[:3], SCENARIO[3:6], SCENARIO[6:8]):
            asyncio.run(send(first.settings, chunk, []))
            sent += len(chunk)
            wait_for(lambda n=sent: ledger_events(first) == n, what=f"{sent} events in the ledger")
        assert redis_values(settings).get(("arr", "point", "all", "all")) == 16000
        time.sleep(4)  # past the offset commit interval: the restart must use the changelog
    finally:
        first.kill()

    second = start_worker(settings, tmp_path, name="first")  # the same data directory
    try:
        wait_for(lambda: ledger_events(second) == 8, what="the ledger rebuilt")
        samples = prometheus_values(second.metrics_text())
        assert samples[("revpulse_ledger_rebuilt_events", ())] == 8
        # every record was delivered, and so kept locally, long before the kill
        assert samples[("revpulse_ledger_changelog_tail_records", ())] == 0
        assert "recovery reads the 0 records after it" in second.log_tail(400)
        # the rest, plus every event again: none may count twice
        asyncio.run(send(second.settings, SCENARIO[8:] + SCENARIO, []))

        def caught_up() -> bool:
            values = redis_values(settings)
            return values.get(("spend", "30d", "all", "all")) == 4000

        wait_for(caught_up, timeout_seconds=90, what="spend 4,000 after the restart")
        wait_for_figures(settings, EXPECTED)
        duplicates = ("revpulse_events_duplicate_total", (("type", "lead.created"),))

        def repeats_counted() -> bool:  # each id gate counts its own: not all by the figures
            return prometheus_values(second.metrics_text()).get(duplicates, 0) >= 4

        wait_for(repeats_counted, timeout_seconds=30, what="the lead.created repeats counted")
        samples = prometheus_values(second.metrics_text())
        assert samples[("revpulse_ledger_recovered", ())] == 1
        assert samples[("revpulse_ledger_events", ())] == len(SCENARIO)
    finally:
        second.stop()
