"""The publisher without a broker: a real LedgerOwner, real sinks (MemorySink, the alerts
sink on a fake topic), a dict-backed table."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from models.events import event_to_json
from models.policy import MetricPolicy
from models.publication import BandChange, Publication
from sinks.alerts_topic import ALERT_KEY, AlertsTopicSink
from sinks.errors import SinkUnavailableError
from sinks.memory import MemorySink
from sinks.ops_metrics import OpsMetrics, build_ops_metrics
from streams.pipeline.health import PublishHealth
from streams.pipeline.ledger_log import BAND_KEY
from streams.pipeline.ledger_stage import LedgerStage, TableRecovery
from streams.pipeline.owner import LedgerOwner
from streams.pipeline.publisher import Publisher
from tests.unit.builders import contract
from tests.unit.pipeline_fakes import FakeReader, FakeTable, FakeTopic

CLOCK = dt.datetime(2026, 5, 2, 12, tzinfo=dt.UTC)


class FailingSink(MemorySink):
    """A memory sink whose next ``failures`` publishes find it unreachable."""

    name = "flaky"

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def publish(self, publication: Publication) -> None:
        if self.failures:
            self.failures -= 1
            raise SinkUnavailableError(self.name, "connection refused")
        await super().publish(publication)


class Harness:
    def __init__(self, *extra_sinks: MemorySink, alert_failures: int = 0) -> None:
        self.owner = LedgerOwner(MetricPolicy(), "event", "30d")  # strong >= 1,000,000
        self.table = FakeTable()
        self.ops: OpsMetrics = build_ops_metrics(CollectorRegistry())
        self.ledger = LedgerStage(
            owner=self.owner, table=self.table, dead_letters=FakeTopic(), late=FakeTopic(),
            ops=self.ops, read_facts=FakeReader(), recovery=TableRecovery(done=lambda: True),
        )  # fmt: skip
        self.memory = MemorySink()
        self.alerts_topic = FakeTopic(failures=alert_failures)
        self.health = PublishHealth()
        self.owns = True
        self.publisher = Publisher(
            ledger=self.ledger,
            sinks=[self.memory, *extra_sinks, AlertsTopicSink(self.alerts_topic)],
            table=self.table,
            ops=self.ops,
            health=self.health,
            owns_ledger=lambda: self.owns,
        )
        self.offset = 0

    async def sign(self, acv: int) -> None:
        """One new 12-month marketing contract (ACV = its value) through the ledger stage."""
        number = self.offset + 1
        event = contract(
            f"e{number}", f"C{number}", f"2026-05-{number:02d}", account_id=f"A{number}",
            origin="marketing", channel="paid_search", recurring_value=str(acv),
        )  # fmt: skip
        await self.ledger.handle(event_to_json(event).encode(), {}, self.offset)
        self.offset += 1

    def count(self, counter: str, **labels: str) -> float:
        metric = getattr(self.ops, counter)
        return float((metric.labels(**labels) if labels else metric)._value.get())

    def alerts(self) -> list[tuple[str, str]]:
        sent = [json.loads(m.value or b"") for m in self.alerts_topic.sent]
        assert all(m.key == ALERT_KEY for m in self.alerts_topic.sent)
        return [(alert["previous"], alert["current"]) for alert in sent]


async def test_a_publication_reaches_every_sink_and_its_band_is_kept_with_the_ledger() -> None:
    harness = Harness()
    await harness.sign(1_200_000)
    await harness.publisher.tick()
    latest = harness.memory.latest
    assert latest is not None and latest.band == "strong" and latest.band_change is None
    assert harness.table.data[BAND_KEY] == b"strong"
    assert harness.table.changelog[-1] == (BAND_KEY, b"strong")
    assert harness.alerts() == []  # the first band is no change
    assert harness.health.problem() is None
    assert harness.count("last_publish_success") > 0
    assert harness.count("ledger_events") == 1
    assert harness.count("bucket_days") == 1  # the day of the one contract signed
    assert harness.count("published_series") == len(latest.points)
    assert harness.count("ledger_owner") == 1

    await harness.publisher.tick()  # nothing new: nothing published
    assert len(harness.memory.publications) == 1


async def test_a_band_alert_whose_send_fails_is_sent_once_on_the_next_publish() -> None:
    harness = Harness(alert_failures=1)
    await harness.sign(1_200_000)
    await harness.publisher.tick()  # strong: no change, so no alert sent (or lost)
    await harness.sign(200_000)  # 30-day mean 700,000: moderate
    await harness.publisher.tick()
    assert harness.alerts() == []  # the broker did not take it
    assert harness.count("publish_failures", step="alerts") == 1
    assert harness.count("sink_errors", sink="alerts") == 1
    assert harness.count("band_changes", band="moderate") == 0
    problem = harness.health.problem()
    assert (
        problem is not None
        and "alerts: SinkUnavailableError: sink alerts unavailable: ConnectionError" in problem
    )
    assert harness.owner.unsent_change is not None
    assert harness.table.data[BAND_KEY] == b"strong"  # not delivered: not kept either

    await harness.publisher.tick()  # the retry
    assert harness.alerts() == [("strong", "moderate")]
    assert harness.count("band_changes", band="moderate") == 1
    assert harness.health.problem() is None
    assert harness.owner.unsent_change is None
    assert harness.table.data[BAND_KEY] == b"moderate"

    await harness.publisher.tick()  # nothing new
    await harness.sign(1_200_000)  # mean 800,000: still moderate
    await harness.publisher.tick()
    assert harness.alerts() == [("strong", "moderate")]  # delivered exactly once


async def test_a_failing_sink_is_counted_shown_and_sent_everything_again() -> None:
    flaky = FailingSink(failures=0)
    harness = Harness(flaky)
    await harness.sign(1_200_000)
    await harness.publisher.tick()
    flaky.failures = 1
    await harness.sign(1_100_000)
    await harness.publisher.tick()
    assert len(flaky.publications) == 1 and len(harness.memory.publications) == 2
    assert harness.count("publish_failures", step="flaky") == 1
    assert harness.count("sink_errors", sink="flaky") == 1
    problem = harness.health.problem()
    assert problem is not None
    assert problem.endswith(
        "flaky: SinkUnavailableError: sink flaky unavailable: connection refused"
    )

    await harness.publisher.tick()  # nothing new, but the last publish failed: again, in full
    assert len(flaky.publications) == 2
    state = flaky.publications[1].state
    assert state is not None and state.full
    assert harness.health.problem() is None
    assert harness.count("publish_failures", step="flaky") == 1


async def test_a_worker_that_lost_the_ledger_drops_it_and_withdraws() -> None:
    harness = Harness()
    await harness.sign(1_200_000)
    await harness.publisher.tick()
    harness.owns = False
    await harness.publisher.tick()
    assert not harness.owner.ready
    assert harness.memory.withdrawn
    assert harness.count("ledger_owner") == 0
    assert harness.health.problem() is None


class UnclosableSink(MemorySink):
    name = "unclosable"

    async def close(self) -> None:
        raise ConnectionError("reset by peer")


async def test_closing_the_sinks_closes_each_though_one_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    last = MemorySink()
    harness = Harness(UnclosableSink(), last)
    with caplog.at_level(logging.WARNING, logger="streams.pipeline.publisher"):
        await harness.publisher.close_sinks()
    assert harness.memory.closed and last.closed
    [record] = caplog.records
    assert record.getMessage() == "closing sink unclosable failed" and record.exc_info


class SilentTopic:
    """A broker that queues the message and never answers."""

    async def send(self, *, key: bytes | None = None, value: bytes | None = None) -> Any:
        return asyncio.get_running_loop().create_future()


async def test_an_alert_the_broker_never_confirms_is_a_sink_failure() -> None:
    sink = AlertsTopicSink(SilentTopic(), timeout_seconds=0.05)
    change = BandChange("strong", "moderate", Decimal(700_000), "30d", CLOCK)
    await sink.publish(Publication((), CLOCK, None, "strong"))  # no change: nothing sent
    with pytest.raises(SinkUnavailableError, match="sink alerts unavailable: TimeoutError"):
        await sink.publish(Publication((), CLOCK, None, "moderate", change))


async def test_each_computed_publication_records_its_wall_and_cpu_time() -> None:
    harness = Harness()
    registry = CollectorRegistry()
    harness.ops = harness.publisher.ops = build_ops_metrics(registry)
    await harness.sign(1_200_000)
    await harness.publisher.tick()
    await harness.publisher.tick()  # nothing new: nothing computed, nothing recorded
    wall = registry.get_sample_value("revpulse_publish_duration_seconds_sum", {"step": "compute"})
    assert (
        registry.get_sample_value("revpulse_publish_duration_seconds_count", {"step": "compute"})
        == 1
    )
    assert registry.get_sample_value("revpulse_publish_compute_cpu_seconds_count") == 1
    cpu = registry.get_sample_value("revpulse_publish_compute_cpu_seconds_sum")
    assert wall == harness.owner.last_compute_seconds
    assert cpu == harness.owner.last_compute_cpu_seconds and cpu is not None and cpu > 0


async def test_a_full_state_read_in_pages_goes_out_whole_once_every_page_is_read() -> None:
    harness = Harness()
    harness.owner.state_page_contracts = 1  # a page per contract
    for acv in (1_200_000, 1_300_000, 1_400_000):
        await harness.sign(acv)
    await harness.publisher.tick()
    assert len(harness.memory.publications) == 1
    state = harness.memory.publications[0].state
    assert state is not None and state.full
    assert set(state.contracts) == {"C1", "C2", "C3"}
    assert not harness.owner.state_incomplete
