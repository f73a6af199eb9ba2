"""The publisher: on each tick, a publication computed from the ledger goes to every sink.

A sink that fails is counted and shown on /readyz, and the publication is sent again in
full on the next tick; a band change stays unsent until every sink took it (band alerts
go out through a sink too, sinks/alerts_topic.py). The band delivered is kept in the
ledger-log table, so the next owner of the ledger knows the band it takes over.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence

from models.publication import Publication
from sinks.base import Sink
from sinks.errors import SinkUnavailableError
from sinks.ops_metrics import OpsMetrics
from streams.pipeline.health import PublishHealth
from streams.pipeline.intake import reason_text
from streams.pipeline.ledger_log import BAND_KEY
from streams.pipeline.ledger_stage import LedgerStage
from streams.pipeline.ports import LogTable

log = logging.getLogger(__name__)


class Publisher:
    def __init__(
        self,
        *,
        ledger: LedgerStage,
        sinks: Sequence[Sink],
        table: LogTable,
        ops: OpsMetrics,
        health: PublishHealth,
        owns_ledger: Callable[[], bool],
    ) -> None:
        """``owns_ledger``: whether this worker holds the facts partition now."""
        self.ledger = ledger
        self.owner = ledger.owner
        self.sinks = list(sinks)
        self.table = table
        self.ops = ops
        self.health = health
        self.owns_ledger = owns_ledger
        for sink in self.sinks:
            # exported at 0 from the start, so that Prometheus' increase() sees the first
            # failure (as the entity parts' sink's is, streams.pipeline.entity_parts)
            ops.sink_errors.labels(sink.name)

    async def start_sinks(self) -> None:
        for sink in self.sinks:
            await sink.start()

    async def close_sinks(self) -> None:
        """The worker stops: each sink lets go of its connections; one that fails to is
        logged, and the others are closed still."""
        for sink in self.sinks:
            try:
                await sink.close()
            except Exception:
                log.warning("closing sink %s failed", sink.name, exc_info=True)

    async def tick(self) -> None:
        try:
            await self.publish_once()
        except Exception as error:  # a failed publish must never stop the worker
            self.publish_failed("other", error, log_traceback=True)

    async def publish_once(self) -> None:
        owns = self.owns_ledger()
        self.ops.ledger_owner.set(1 if owns else 0)
        if not owns:
            await self.not_the_owner()
            return
        if not self.owner.ready and self.ledger.recovery.done():
            async with self.ledger.lock:
                await self.ledger.load_if_needed()
        if not self.owner.ready:
            return
        try:
            # in a thread, so the loop (ingestion, probes, /readyz) is not held meanwhile;
            # the lock keeps the ledger agent from changing the ledger until it is done
            async with self.ledger.lock:
                now = dt.datetime.now(dt.UTC)
                publication = await asyncio.to_thread(self.owner.publication, now)
            while publication is not None and self.owner.state_incomplete:
                # the rest of a full state, a page at a time: between pages, the ledger
                # agent goes on (what it changes is in the next delta)
                async with self.ledger.lock:
                    if not await asyncio.to_thread(self.owner.read_state_page):
                        return  # the ledger was dropped meanwhile: made again next time
        except Exception as error:  # a publish that cannot be computed is a failed publish
            self.publish_failed("compute", error, log_traceback=True)
            return
        if publication is None:  # nothing new: the sinks are current, unless failing
            await self.check_sinks()
            if self.health.problem() is None:
                self.ops.last_publish_success.set(time.time())
            return
        self.ops.publish_seconds.labels("compute").observe(self.owner.last_compute_seconds)
        self.ops.publish_cpu_seconds.observe(self.owner.last_compute_cpu_seconds)
        if self.owner.ledger is not None:
            self.ops.ledger_events.set(self.owner.ledger.accepted_count)
            self.ops.bucket_days.set(self.owner.ledger.buckets.day_count)
        self.ops.published_series.set(len(publication.points))
        await self.publish(publication)

    async def not_the_owner(self) -> None:
        self.health.succeeded()  # nothing to publish here: not this worker's failure
        if self.owner.ready:
            log.info("ledger partition moved to another worker")
            self.owner.drop()
            for sink in self.sinks:
                await sink.withdraw()

    def publish_failed(self, step: str, error: Exception, *, log_traceback: bool) -> None:
        """Counted, shown on /readyz until a publish succeeds, and retried next tick."""
        self.ops.publish_failures.labels(step).inc()
        self.health.failed(time.time(), f"{step}: {reason_text(error)}")
        self.owner.publish_failed()
        if log_traceback:
            log.error("publish failed (%s); will retry", step, exc_info=error)
        else:
            log.warning("publish failed: %s; will retry", error)

    async def check_sinks(self) -> None:
        """A sink that lost what it holds (Redis restarted) is a failed publish, even with
        nothing new: the next publish then writes everything."""
        for sink in self.sinks:
            try:
                await sink.check()
            except SinkUnavailableError as error:
                self.ops.sink_errors.labels(sink.name).inc()
                self.publish_failed(sink.name, error, log_traceback=False)

    async def publish(self, publication: Publication) -> None:
        delivered = await self.fan_out(publication)
        now = time.time()
        for arrival in self.owner.arrivals_seconds:
            self.ops.latency.observe(max(0.0, now - arrival))
        self.owner.arrivals_seconds.clear()
        if not delivered:
            return  # a band change stays with the owner until every sink took it
        self.owner.published()
        self.health.succeeded()
        self.ops.last_publish_success.set(time.time())
        if publication.band is not None and self.table.get(BAND_KEY) != (
            band := publication.band.encode()
        ):
            # kept with the ledger, so the next owner knows the band it takes over
            await self.table.send([(BAND_KEY, band)])
        if publication.band_change is not None:
            self.ops.band_changes.labels(publication.band_change.current).inc()

    async def fan_out(self, publication: Publication) -> bool:
        """``publication`` to every sink; whether every sink took it."""
        delivered = True
        for sink in self.sinks:
            started = time.perf_counter()
            try:
                await sink.publish(publication)
            except SinkUnavailableError as error:
                self.ops.sink_errors.labels(sink.name).inc()
                self.publish_failed(sink.name, error, log_traceback=False)
                delivered = False
            except Exception as error:  # a sink's own bug: the same, with its traceback
                self.ops.sink_errors.labels(sink.name).inc()
                self.publish_failed(sink.name, error, log_traceback=True)
                delivered = False
            else:
                self.ops.sink_last_success.labels(sink.name).set(time.time())
                self.ops.publish_seconds.labels(sink.name).observe(time.perf_counter() - started)
        return delivered
