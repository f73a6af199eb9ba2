"""``revpulse metrics --as-of``: any date, from the state the worker keeps in Redis."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import time
from pathlib import Path

import pytest

from models.events import parse_event
from streams.devstack.simulator import FunnelSimulator
from streams.settings import Settings
from tests.integration.scenario import EXPECTED, SCENARIO
from tests.integration.test_end_to_end import prometheus_values, send, wait_for_figures
from tests.integration.workers import isolated_settings, run_cli, start_worker, wait_for

pytestmark = pytest.mark.timeout(300)


def json_lines(output: str) -> list[dict[str, str]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def as_of_is_current(settings: Settings, day: str) -> bool:
    current = run_cli(settings, "metrics", "--json")
    as_of = run_cli(settings, "metrics", "--json", "--as-of", day)
    return current.returncode == as_of.returncode == 0 and as_of.stdout == current.stdout


@pytest.mark.parametrize("entity_stage", [False, True])
def test_as_of_answers_past_present_and_future(
    entity_stage: bool, kafka: str, redis_url: str, tmp_path: Path
) -> None:
    """With REVPULSE_ENTITY_STAGE the contracts and churns come from the entity
    partitions' parts of the copy, the buckets from the ledger's."""
    settings = isolated_settings(kafka, redis_url, entity_stage=entity_stage)
    worker = start_worker(settings, tmp_path)
    try:
        asyncio.run(send(settings, SCENARIO, []))
        wait_for_figures(settings, EXPECTED)
        # the entity parts are written on their own tick, next to the ledger's publish
        wait_for(lambda: as_of_is_current(settings, "2026-03-10"), timeout_seconds=30,
                 what="the state copy answering the watermark's day as published")  # fmt: skip
    finally:
        worker.stop()

    # the worker is gone: --as-of needs only Redis
    current = run_cli(settings, "metrics", "--json")
    as_of_watermark = run_cli(settings, "metrics", "--json", "--as-of", "2026-03-10")
    assert current.returncode == 0 and as_of_watermark.returncode == 0, as_of_watermark.stderr
    assert as_of_watermark.stdout == current.stdout  # the same function, the same figures

    def arr_on(day: str) -> str:
        result = run_cli(settings, "metrics", "--json", "--as-of", day, "--metric", "arr")
        assert result.returncode == 0, result.stderr
        (point,) = json_lines(result.stdout)
        assert point["as_of"] == day
        return point["value"]

    assert arr_on("2026-03-04") == "0"  # before any start date
    assert arr_on("2026-03-05") == "8000"  # C1 started
    assert arr_on("2026-03-06") == "16000"  # C2 too
    assert arr_on("2026-09-06") == "8000"  # C2's 6 months are over: contracted ARR
    assert arr_on("2029-03-05") == "0"  # C1's 3 years are over

    leads_before = run_cli(settings, "metrics", "--json", "--as-of", "2026-02-28")
    leads = [p for p in json_lines(leads_before.stdout) if p["metric"] == "leads"]
    assert {p["value"] for p in leads} == {"0"}  # every lead came later
    totals = sorted(p["window"] for p in leads if p["origin"] == p["channel"] == "all")
    assert totals == ["30d", "365d", "7d", "90d", "month", "quarter"]


def _history(count: int) -> list[dict[str, object]]:
    """A funnel over 20 days, stamped in the past."""
    simulator = FunnelSimulator(random.Random(7))
    start = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    events: list[dict[str, object]] = []
    step = 0
    while len(events) < count:
        events.extend(simulator.step(start + dt.timedelta(minutes=step * 29)))
        step += 1
    return events


def test_shuffled_duplicated_replay_is_byte_identical(
    kafka: str, redis_url: str, tmp_path: Path
) -> None:
    events = _history(600)
    for event in events:
        parse_event(event)
    plain = tmp_path / "plain.ndjson"
    plain.write_text("".join(json.dumps(e) + "\n" for e in events))
    rng = random.Random(11)
    messy_events = events + events
    rng.shuffle(messy_events)  # the span is ~12 days: within the tests' 30 days of lateness
    messy = tmp_path / "messy.ndjson"
    messy.write_text("".join(json.dumps(e) + "\n" for e in messy_events))

    outputs = []
    for name, path in (("plain", plain), ("messy", messy)):
        settings = isolated_settings(kafka, redis_url)
        worker = start_worker(settings, tmp_path, name=name)
        try:
            replay = run_cli(settings, "replay", str(path))
            assert replay.returncode == 0, replay.stderr
            wait_for(
                lambda w=worker: (
                    prometheus_values(w.metrics_text()).get(("revpulse_ledger_events", ()))
                    == len(events)
                ),
                timeout_seconds=120,
                what=f"{name}: all events applied",
            )
            time.sleep(1.5)  # one more publish after the last batch
        finally:
            worker.stop()
        result = run_cli(settings, "metrics", "--json", "--as-of", "2026-02-20")
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    assert len(outputs[0].splitlines()) > 100
    assert outputs[0] == outputs[1]
