"""The entity partitions' parts of the state copy, without a broker or Redis: the entity
stage of tests.unit.test_entity_stage, and a part sink that keeps what it is sent. Each
part is written in full the first time after its state is loaded, then only what
changed; a failed write, or a part that cannot be loaded or read, shows on /readyz
until the part is written again, the other parts written all the same; a revoked
partition is no longer written; the sink is closed when the worker stops; and the
ledger where the changes meet keeps no contract and no churn."""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from models.book import BookedContract, Churn
from models.state import StateDelta
from sinks.errors import SinkUnavailableError
from sinks.memory import MemorySink
from streams.pipeline.app import build_pipeline
from streams.pipeline.entity_parts import EntityParts, entity_part, part_clock
from streams.pipeline.health import PartsHealth
from streams.pipeline.web import WebPages
from streams.settings import Settings
from tests.unit.builders import churn, contract
from tests.unit.test_entity_stage import EVENTS, PARTITIONS, Pipeline
from tests.unit.test_publisher import Harness as PublisherHarness
from tests.unit.test_web import ReachableProbes

EVENT_CLOCK = part_clock("event")


@dataclass
class FakePartSink:
    """Keeps each delta written, and each part's copy as the deltas leave it; the next
    ``failures`` writes fail."""

    name: str = "fake"
    written: list[tuple[StateDelta, dt.datetime | None]] = field(default_factory=list)
    copies: dict[str, tuple[dict[str, BookedContract], dict[str, Churn]]] = field(
        default_factory=dict
    )
    forgotten: list[str] = field(default_factory=list)
    failures: int = 0
    failure: type[Exception] = SinkUnavailableError
    closed: bool = False

    async def start(self) -> None:
        return None

    async def write(self, delta: StateDelta, clock: dt.datetime | None) -> None:
        if self.failures:
            self.failures -= 1
            raise self.failure(self.name, "down")
        self.written.append((delta, clock))
        if delta.full or delta.part not in self.copies:
            assert delta.full, "an incremental delta to a part never written in full"
            self.copies[delta.part] = ({}, {})
        contracts, churns = self.copies[delta.part]
        contracts.update(delta.contracts)
        churns.update(delta.churns)

    def forget(self, part: str) -> None:
        self.forgotten.append(part)

    async def close(self) -> None:
        self.closed = True

    def take(self) -> list[StateDelta]:
        deltas = [delta for delta, _clock in self.written]
        self.written.clear()
        return deltas


async def fed(events: list[object] = EVENTS) -> tuple[Pipeline, EntityParts, FakePartSink]:
    pipeline = Pipeline()
    for offset, event in enumerate(events):
        await pipeline.admit([event], offset)  # type: ignore[list-item]
        await pipeline.pump()
    sink = FakePartSink()
    parts = EntityParts(
        stage=pipeline.entities, sink=sink, ops=pipeline.ops, health=PartsHealth(),
        clock=EVENT_CLOCK, page_size=1,
    )  # fmt: skip
    return pipeline, parts, sink


def every_contract(pipeline: Pipeline) -> dict[str, BookedContract]:
    return {
        c.contract_id: c
        for part in pipeline.entities.parts.values()
        for c in part.state.contracts()
    }


async def test_each_part_is_written_in_full_then_only_what_changed() -> None:
    pipeline, parts, sink = await fed()
    await parts.tick()
    first = sink.take()
    assert sorted(d.part for d in first) == [entity_part(p) for p in range(PARTITIONS)]
    assert all(d.full and not d.buckets for d in first)
    # page_size=1: read a contract (and a churn) per page, every one of them
    copied = {cid: c for contracts, _ in sink.copies.values() for cid, c in contracts.items()}
    assert copied == every_contract(pipeline) and set(copied) == {"C1", "C2"}
    churned = {eid for _, churns in sink.copies.values() for eid in churns}
    assert churned == {"h1", "h2"}

    await parts.tick()
    assert sink.take() == []  # nothing new, the same day: nothing written

    await pipeline.admit([contract("c3", "C3", "2026-03-07", account_id="A3")], len(EVENTS))
    await pipeline.admit([churn("h3", "A3", "2026-03-08")], len(EVENTS) + 1)
    await pipeline.pump()
    await parts.tick()
    later = sink.take()
    assert all(not d.full for d in later)
    assert {cid for d in later for cid in d.contracts} == {"C3"}
    assert {eid for d in later for eid in d.churns} == {"h3"}
    assert every_contract(pipeline) == {
        cid: c for contracts, _ in sink.copies.values() for cid, c in contracts.items()
    }


async def test_a_part_is_bounded_from_its_partitions_latest_event() -> None:
    pipeline, parts, sink = await fed()
    await parts.tick()
    assert len(sink.written) == PARTITIONS  # the loop below checks every part
    for delta, clock in sink.written:
        state = pipeline.entities.parts[int(delta.part.split("-")[1])].state
        assert clock == state.watermark is not None


async def test_a_part_read_again_from_its_table_is_written_in_full() -> None:
    pipeline, parts, sink = await fed()
    await parts.tick()
    sink.take()
    held = pipeline.entities.parts[0]
    pipeline.entities.drop(held)  # a takeover: the state is read from the table again
    await parts.tick()  # loaded though no message came, and written whole
    [again] = sink.take()
    assert again.part == entity_part(0) and again.full
    assert pipeline.entities.parts[0] is not held
    assert again.contracts == {
        c.contract_id: c for c in pipeline.entities.parts[0].state.contracts()
    }


async def test_a_failed_write_makes_the_next_one_full() -> None:
    pipeline, parts, sink = await fed()
    await parts.tick()
    sink.take()
    await pipeline.admit([contract("c3", "C3", "2026-03-07", account_id="A3")], len(EVENTS))
    await pipeline.pump()
    sink.failures = 1
    await parts.tick()  # the delta holding C3 is lost with the write
    await parts.tick()
    rewritten = sink.take()
    assert [d.full for d in rewritten] == [True]
    assert "C3" in rewritten[0].contracts


@pytest.mark.parametrize(
    ("failure", "traceback"), [(SinkUnavailableError, False), (TypeError, True)]
)
async def test_a_failed_write_is_logged_and_a_sink_s_own_bug_with_its_traceback(
    failure: type[Exception], traceback: bool, caplog: pytest.LogCaptureFixture
) -> None:
    _pipeline, parts, sink = await fed()
    sink.failure, sink.failures = failure, PARTITIONS
    with caplog.at_level(logging.WARNING, logger="streams.pipeline.entity_parts"):
        await parts.tick()
    assert len(caplog.records) == PARTITIONS
    assert all((record.exc_info is not None) is traceback for record in caplog.records)
    assert parts.ops.sink_errors.labels("fake")._value.get() == PARTITIONS
    assert parts.ops.sink_last_success.labels("fake")._value.get() == 0
    await parts.tick()
    assert [d.full for d in sink.take()] == [True] * PARTITIONS
    assert parts.ops.sink_last_success.labels("fake")._value.get() > 0  # the alert clears


@pytest.mark.parametrize(
    ("failure", "first_level"),
    [(SinkUnavailableError, logging.WARNING), (TypeError, logging.ERROR)],
)
async def test_a_write_that_keeps_failing_is_logged_once_then_when_written_again(
    failure: type[Exception], first_level: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Tried again every tick: its first failure is logged as above, the next ones at
    debug only, and one line at info says the part is written again."""
    _pipeline, parts, sink = await fed()
    sink.failure = failure
    with caplog.at_level(logging.DEBUG, logger="streams.pipeline.entity_parts"):
        for _tick in range(3):
            sink.failures = 1  # entities-0's write, the first of each tick
            await parts.tick()
        await parts.tick()  # entities-0 written
        await parts.tick()  # nothing new: nothing written, nothing logged
    assert [(d.part, d.full) for d in sink.take()] == [
        (entity_part(1), True),
        (entity_part(0), True),
    ]
    assert parts.ops.sink_errors.labels("fake")._value.get() == 3
    logged = [r for r in caplog.records if r.name == "streams.pipeline.entity_parts"]
    assert [r.levelno for r in logged] == [first_level, logging.DEBUG, logging.DEBUG, logging.INFO]
    assert (logged[0].exc_info is not None) is (failure is TypeError)
    assert all(r.exc_info is None for r in logged[1:])
    assert logged[2].getMessage().startswith("entity part 0: not written again (3 in a row): ")
    assert logged[3].getMessage() == (
        "entity part 0 of the state copy written again after 3 failed attempts"
    )


async def test_a_failed_write_shows_on_readyz_until_that_part_is_written_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Shown on a worker that does not own the ledger too: its publisher clears the
    publish health on every tick, not the parts'."""
    now = [1_767_225_600.0]  # 2026-01-01T00:00:00Z
    monkeypatch.setattr("streams.pipeline.entity_parts.time", SimpleNamespace(time=lambda: now[0]))
    _pipeline, parts, sink = await fed()
    publishing = PublisherHarness()
    publishing.owns = False
    pages = WebPages(
        registry=CollectorRegistry(), probes=ReachableProbes(), recovery_problem=lambda: None,
        owner=publishing.owner, health=publishing.health, parts_health=parts.health,
    )  # fmt: skip
    reason = "fake: SinkUnavailableError: sink fake unavailable: down"

    sink.failures = 1  # the first part written, entities-0
    await parts.tick()
    now[0] += 60
    sink.failures = 1  # fails again a minute later: still failing since the first time
    await parts.tick()
    await publishing.publisher.tick()
    status, body = await pages.readyz()
    assert status == 503 and body["not_ready"] == ["entity_parts"]
    assert body["entity_parts"] == f"entities-0 failing since 2026-01-01T00:00:00+00:00: {reason}"
    assert body["publish"] == "ok"

    sink.take()
    await parts.tick()  # entities-0 written again
    assert [(d.part, d.full) for d in sink.take()] == [(entity_part(0), True)]
    assert await pages.readyz() == (200, {**body, "ready": True, "not_ready": [],
                                          "entity_parts": "ok"})  # fmt: skip


async def test_a_part_that_cannot_be_loaded_is_counted_shown_and_the_others_written(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """As a failed write is: under the sink's errors and on /readyz, until the part is
    written; its traceback is logged once per streak of failures, not every tick."""
    monkeypatch.setattr("streams.pipeline.entity_parts.time",
                        SimpleNamespace(time=lambda: 1_767_225_600.0))  # fmt: skip
    pipeline, parts, sink = await fed()
    stage = pipeline.entities
    for part in list(stage.parts.values()):
        stage.drop(part)  # both taken over: each is loaded from its table at the next tick
    read_end = stage.read_changelog_end

    async def broken_for_0(partition: int) -> list[Any]:
        if partition == 0:
            raise ConnectionError("broker gone")
        return await read_end(partition)

    stage.read_changelog_end = broken_for_0
    with caplog.at_level(logging.INFO, logger="streams.pipeline.entity_parts"):
        await parts.tick()
        await parts.tick()
    assert [(d.part, d.full) for d in sink.take()] == [(entity_part(1), True)]
    assert parts.ops.sink_errors.labels("fake")._value.get() == 2
    assert parts.health.problem() == (
        "entities-0 failing since 2026-01-01T00:00:00+00:00: "
        "loading its state: ConnectionError: broker gone"
    )
    [logged] = caplog.records
    assert logged.levelno == logging.ERROR and logged.exc_info is not None

    caplog.clear()
    stage.read_changelog_end = read_end
    with caplog.at_level(logging.INFO, logger="streams.pipeline.entity_parts"):
        await parts.tick()
    assert [(d.part, d.full) for d in sink.take()] == [(entity_part(0), True)]
    assert parts.health.problem() is None
    assert [r.getMessage() for r in caplog.records] == [
        "entity part 0 of the state copy written again after 2 failed attempts"
    ]


async def test_a_part_that_cannot_be_read_is_written_in_full_once_it_is(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A page of its contracts (a full write) or its changes (an incremental one) that
    fails to read: counted, shown and logged as above, the other part written; each
    streak of failures is logged once."""
    pipeline, parts, sink = await fed()
    state = pipeline.entities.parts[0].state
    read_page, take_delta = state.contract_page, state.take_delta
    broken = [True]

    def contract_page(after: str | None, limit: int) -> list[BookedContract]:
        if broken[0]:
            raise OSError("disk read error")
        return read_page(after, limit)

    state.contract_page = contract_page  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="streams.pipeline.entity_parts"):
        for _tick in range(3):
            await parts.tick()
        assert [d.part for d in sink.take()] == [entity_part(1)]
        assert parts.ops.sink_errors.labels("fake")._value.get() == 3
        problem = parts.health.problem()
        assert problem is not None and problem.startswith("entities-0 failing since")
        assert problem.endswith(": reading its state: OSError: disk read error")
        assert len(caplog.records) == 1 and caplog.records[0].exc_info is not None

        broken[0] = False
        await parts.tick()
        [whole] = sink.take()
        assert (whole.part, whole.full) == (entity_part(0), True)
        assert whole.contracts == {c.contract_id: c for c in state.contracts()}
        assert parts.health.problem() is None

        def no_delta(*, full: bool) -> StateDelta:
            raise ValueError("undecodable record")

        state.take_delta = no_delta  # type: ignore[method-assign]
        await parts.tick()
        await parts.tick()
        assert len(caplog.records) == 2  # a new streak: its first failure is logged again
        assert parts.ops.sink_errors.labels("fake")._value.get() == 5
        state.take_delta = take_delta  # type: ignore[method-assign]
        await parts.tick()
        assert [(d.part, d.full) for d in sink.take()] == [(entity_part(0), True)]
        assert parts.health.problem() is None and len(caplog.records) == 2


async def test_a_revoked_partition_s_failed_write_is_no_longer_shown() -> None:
    _pipeline, parts, sink = await fed()
    sink.failures = PARTITIONS
    await parts.tick()
    assert parts.health.problem() is not None
    await parts.forget_revoked(None, [SimpleNamespace(partition=p) for p in range(PARTITIONS)])
    assert parts.health.problem() is None


async def test_closing_a_part_sink_that_fails_to_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    _pipeline, parts, sink = await fed()

    async def refuse() -> None:
        raise ConnectionError("reset by peer")

    sink.close = refuse  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="streams.pipeline.entity_parts"):
        await parts.close()
    [record] = caplog.records
    assert record.getMessage() == "closing the entity parts' sink fake failed" and record.exc_info


async def test_the_built_worker_closes_the_part_sink_and_the_publisher_s_when_it_stops(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path, entity_stage=True, insecure_dev_mode=True)
    memory, part_sink = MemorySink(), FakePartSink()
    app = build_pipeline(
        settings, sinks=[memory], registry=CollectorRegistry(), part_sink=part_sink
    ).app
    try:
        await app.stop()  # Faust's stop: never started, so only its own on_stop runs
        assert memory.closed and part_sink.closed
    finally:  # the loop Faust made for the consumer thread
        app.consumer._thread.thread_loop.close()  # type: ignore[attr-defined]


async def test_a_revoked_partition_is_no_longer_written_here() -> None:
    pipeline, parts, sink = await fed()
    await parts.tick()
    sink.take()
    revoked = [SimpleNamespace(partition=1)]
    await pipeline.entities.forget_revoked(None, revoked)
    await parts.forget_revoked(None, revoked)
    pipeline.entities.holds = lambda partition: partition != 1
    await parts.tick()
    assert sink.take() == [] and sink.forgotten == [entity_part(1)]
    assert 1 not in pipeline.entities.parts


async def test_the_ledger_keeps_no_contract_or_churn_in_entity_mode() -> None:
    pipeline, _parts, _sink = await fed()
    ledger = pipeline.ledger.owner.ledger
    assert ledger is not None and ledger.accepted_count == len(EVENTS)
    assert ledger.booked_contracts() == [] and ledger.churns() == []
    publication = pipeline.ledger.owner.publication(dt.datetime(2026, 4, 1, tzinfo=dt.UTC))
    assert publication is not None and publication.state is not None
    assert publication.state.buckets and not publication.state.contracts
    assert not publication.state.churns


def test_failing_parts_are_named_in_partition_order() -> None:
    health = PartsHealth()
    for part in ("entities-10", "entities-2", "entities-0"):
        health.failed(part, 0.0, "redis: down")
    problem = health.problem()
    assert problem is not None
    named = [reason.split(" failing")[0] for reason in problem.split("; ")]
    assert named == ["entities-0", "entities-2", "entities-10"]


async def test_the_part_sink_s_errors_are_exported_at_zero_before_any_failure() -> None:
    """A counter that first appears at 1 shows no increase() in Prometheus: the sink
    failing alert would miss a worker's first failed write."""
    _pipeline, parts, _sink = await fed()
    [errors] = parts.ops.sink_errors.collect()
    exported = {(s.name, s.labels["sink"]): s.value for s in errors.samples}
    assert exported[("revpulse_sink_errors_total", "fake")] == 0


def test_the_built_worker_exports_every_sink_s_errors_at_zero_from_the_start(
    tmp_path: Path,
) -> None:
    """Every sink the worker has, the publisher's (the alerts topic's included) and the
    entity parts', before it has written anything: a sink's first failure is an
    increase() from 0 for RevpulseSinkFailing."""
    settings = Settings(data_dir=tmp_path, entity_stage=True, insecure_dev_mode=True)
    registry = CollectorRegistry()
    app = build_pipeline(
        settings, sinks=[MemorySink()], registry=registry, part_sink=FakePartSink()
    ).app
    try:
        text = generate_latest(registry).decode()
    finally:  # the loops Faust made for the app and the consumer thread
        app.consumer._thread.thread_loop.close()  # type: ignore[attr-defined]
        app.loop.close()
    exported = re.findall(r'(?m)^revpulse_sink_errors_total\{sink="([^"]+)"\} (\S+)$', text)
    assert sorted(exported) == [("alerts", "0.0"), ("fake", "0.0"), ("memory", "0.0")]
