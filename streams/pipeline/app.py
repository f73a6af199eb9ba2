"""The Faust app: topics, the ledger-log table, two thin agents, the publisher timer.

events topic (N partitions) --intake--> facts topic (1 partition) --ledger--> sinks
     \\-> dead letters                        \\-> late events        \\-> alerts topic
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast

import faust
from faust.types import TP, EventT
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from models.band import Band
from models.errors import InvalidEventError
from models.events import event_to_json
from models.publication import Publication
from sinks.base import Sink
from sinks.errors import SinkUnavailableError
from sinks.ops_metrics import OpsMetrics, build_ops_metrics
from streams.ingest.http import register_ingest_routes
from streams.kafka.clients import committed_offset, read_range
from streams.pipeline.health import PublishHealth, ReadinessProbes
from streams.pipeline.intake import check_message, reject_reason
from streams.pipeline.ledger_log import BAND_KEY, log_records, next_facts_offset
from streams.pipeline.offsets import Incoming, skipped_ranges
from streams.pipeline.owner import BatchResult, LedgerOwner, conflict_reason
from streams.pipeline.transport import RevpulseApp
from streams.settings import Settings

log = logging.getLogger(__name__)
LEDGER_KEY = b"ledger"
ARRIVAL_HEADER = "revpulse-arrival-ms"
SOURCE_HEADER = "revpulse-source-partition"
BANDS = (b"strong", b"moderate", b"under")
LOOP_PROBE_SECONDS = 0.05  # the event-loop lag probe's sleep
INTAKE_YIELD_EVERY = 100  # messages the intake checks before it lets other work run


@dataclass
class Service:
    app: faust.App
    owner: LedgerOwner
    sinks: list[Sink]
    registry: CollectorRegistry
    ops: OpsMetrics
    publish_health: PublishHealth


def _reason_text(error: Exception) -> str:
    if isinstance(error, InvalidEventError):
        return str(error)
    return f"{type(error).__name__}: {error}"


def _headers(reason: str, message: Any) -> list[tuple[str, bytes]]:
    return [
        ("revpulse-reason", reason.encode()),
        ("revpulse-source-topic", str(message.topic).encode()),
        ("revpulse-source-partition", str(message.partition).encode()),
        ("revpulse-source-offset", str(message.offset).encode()),
    ]


def build_service(settings: Settings, sinks: list[Sink], registry: CollectorRegistry) -> Service:
    policy = settings.policy()
    max_future = settings.max_future()
    publish_health = PublishHealth()
    (settings.data_dir / "faust").mkdir(parents=True, exist_ok=True)
    app = RevpulseApp(
        settings.app_id,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        datadir=str(settings.data_dir / "faust"),
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=settings.session_timeout_seconds,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        stream_wait_empty=False,
    )
    ops = build_ops_metrics(registry)
    for step in ("compute", "other", *(sink.name for sink in sinks)):
        ops.publish_failures.labels(step)  # exported at 0 from the start
    register_ingest_routes(app, settings, registry)  # POST /v1/events, /openapi.json
    probes = ReadinessProbes(
        settings.kafka_bootstrap, settings.redis_url.get_secret_value(), settings.app_id
    )

    async def close_probes(_web_app: Any) -> None:
        await probes.close()

    cast(Any, app.web).web_app.on_cleanup.append(close_probes)  # aiohttp under Faust
    owner = LedgerOwner(
        policy,
        settings.clock,
        settings.band_window,
        publish_share=0.25,
        sources=tuple(str(partition) for partition in range(settings.partitions)),
    )

    events_topic = app.topic(
        settings.events_topic, partitions=settings.partitions,
        key_serializer="raw", value_serializer="raw",
    )  # fmt: skip
    facts_topic = app.topic(
        settings.facts_topic, partitions=1, key_serializer="raw", value_serializer="raw"
    )
    dead_letters = app.topic(
        settings.dead_letter_topic, partitions=settings.partitions,
        key_serializer="raw", value_serializer="raw",
    )  # fmt: skip
    late_topic = app.topic(
        settings.late_topic, partitions=1, key_serializer="raw", value_serializer="raw"
    )
    alerts_topic = app.topic(
        settings.alerts_topic, partitions=1, key_serializer="raw", value_serializer="raw"
    )
    # bytes key and value types make faust use the raw codec for the changelog
    ledger_log = app.Table("ledger-log", partitions=1, key_type=bytes, value_type=bytes)
    facts_tp = TP(settings.facts_topic, 0)

    # per events partition, the next offset this worker expects to read
    next_offsets: dict[int, int] = {}

    async def forget_revoked(_sender: Any, revoked: set[TP], **_kwargs: Any) -> None:
        for tp in revoked:
            if tp.topic == settings.events_topic:
                next_offsets.pop(tp.partition, None)

    # mode's signal type wants the receiver's first argument positional-only
    app.on_partitions_revoked.connect(forget_revoked)  # type: ignore[arg-type]

    async def with_skipped(batch: list[Incoming]) -> list[Incoming]:
        """``batch`` preceded by any messages the consumer skipped (streams/pipeline/offsets.py)."""
        found: list[Incoming] = []
        for partition in sorted({message.partition for message in batch}):
            expected = next_offsets.get(partition)
            if expected is None:  # first seen here: the group's committed offset
                expected = await committed_offset(
                    settings.kafka_bootstrap, settings.app_id, settings.events_topic, partition
                )
            offsets = [m.offset for m in batch if m.partition == partition]
            missing, next_offsets[partition] = skipped_ranges(expected, offsets)
            for start, end in missing:
                log.warning("events[%d] offsets %d-%d skipped by the consumer; reading them",
                            partition, start, end - 1)  # fmt: skip
                records = await read_range(
                    settings.kafka_bootstrap, settings.events_topic, partition, start, end
                )
                ops.events_skipped.inc(len(records))
                found.extend(Incoming.of_record(record) for record in records)
        return found + batch

    async def reject(message: Incoming, error: Exception) -> None:
        reason = _reason_text(error)
        ops.rejected.labels(reject_reason(error)).inc()
        where = f"{message.topic}[{message.partition}]@{message.offset}"
        if isinstance(error, InvalidEventError):
            log.info("dead-lettered %s: %s", where, reason)
        else:
            log.error("dead-lettered %s: %s", where, reason, exc_info=error)
        await dead_letters.send(
            key=message.key, value=message.value or b"", headers=_headers(reason, message)
        )

    @app.agent(events_topic)
    async def intake(stream: Any) -> AsyncIterator[None]:
        """Decode and validate; good events go on to the ledger, one message per batch
        (one produce per event would cost more than the rest of the work), bad ones to
        dead letters with the reason."""
        taken: list[EventT[bytes]]
        async for taken in stream.take_events(
            settings.batch_max_events, within=settings.batch_within_seconds
        ):
            ops.last_event.set(time.time())
            batch = await with_skipped([Incoming.of_event(event) for event in taken])
            # per source partition: the ledger keeps a watermark for each
            lines: dict[int, list[bytes]] = {}
            arrivals: dict[int, list[bytes]] = {}
            now = dt.datetime.now(dt.UTC)
            for index, message in enumerate(batch, start=1):
                if index % INTAKE_YIELD_EVERY == 0:  # a full batch is ~100 ms of checks
                    await asyncio.sleep(0)
                try:
                    parsed = check_message(message.value, policy, now, max_future)
                    line = event_to_json(parsed).encode()
                except Exception as error:  # whatever it is: dead-lettered, the batch goes on
                    await reject(message, error)
                    continue
                ops.consumed.labels(parsed.type).inc()
                lines.setdefault(message.partition, []).append(line)
                arrival = str(int(message.timestamp_seconds * 1000)).encode()
                arrivals.setdefault(message.partition, []).append(arrival)
            for partition, partition_lines in lines.items():
                await facts_topic.send(
                    key=LEDGER_KEY,
                    value=b"\n".join(partition_lines),
                    headers=[
                        (ARRIVAL_HEADER, b",".join(arrivals[partition])),
                        (SOURCE_HEADER, str(partition).encode()),
                    ],
                )
            yield None

    def recovery_done() -> bool:
        """Table recovery for the current assignment is over. Faust sets ``completed`` once
        and never clears it, so a rebalance is told by ``app.rebalancing``, which stays
        set until the new assignment's changelogs are read and the streams resume."""
        recovery = app.tables.recovery  # type: ignore[attr-defined]
        return bool(recovery.completed.is_set()) and not app.rebalancing

    # held while the ledger changes, and while a publication is computed from it
    ledger_lock = asyncio.Lock()

    # the facts offset the ledger expects next: a message past it means the consumer
    # skipped some (Faust can, around rebalances), and the ledger reads them itself
    expected: list[int | None] = [None]

    def rebuild_if_needed() -> None:
        if owner.ready:
            return
        logged = dict(ledger_log.data.items())
        band = logged.pop(BAND_KEY, None)
        records = sorted(logged.items())
        count = owner.rebuild(
            (value for _key, value in records),
            band=cast(Band, band.decode()) if band in BANDS else None,
        )
        expected[0] = next_facts_offset(logged)
        ops.ledger_recovered.set(1)
        ops.rebuilt_events.set(count)
        log.info("ledger rebuilt from its changelog: %d accepted events", count)
        if owner.rebuild_rejects:
            drop_rebuild_rejects(records)
        report_overflow()

    def drop_rebuild_rejects(records: list[tuple[bytes, bytes]]) -> None:
        """Dead-letter the logged events the rebuild skipped, and log their records again
        without them, so the next rebuild neither meets nor dead-letters them again."""
        rejects = owner.rebuild_rejects
        owner.rebuild_rejects = []
        log.error("the ledger changelog holds %d events the ledger cannot hold: skipped and "
                  "dead-lettered", len(rejects))  # fmt: skip
        dropped: dict[int, set[bytes]] = {}
        for rejected in rejects:
            ops.rejected.labels("ledger").inc()
            log.warning("skipped a logged event: %s", rejected.error)
            dropped.setdefault(rejected.batch, set()).add(rejected.line)
            reason = f"in the ledger changelog: {rejected.error}"
            dead_letters.send_soon(
                value=rejected.line, headers=[("revpulse-reason", reason.encode())]
            )
        for index, lines in dropped.items():
            key, value = records[index]
            kept = b"\n".join(line for line in value.splitlines() if line not in lines)
            ledger_log.data[key] = kept
            ledger_log.send_changelog(0, key, kept)

    def report_overflow() -> None:
        """Each channel past the cap logged once and counted: one line per batch, as a
        flood of new channels would otherwise be thousands of lines on the loop."""
        channels = owner.new_overflowed_channels()
        if channels:
            ops.channels_overflowed.inc(len(channels))
            log.warning("%d channel(s) over the cap of %d, counted under 'overflow': %s",
                        len(channels), policy.max_channels, ", ".join(channels))  # fmt: skip

    async def apply_message(value: bytes, headers: dict[str, bytes], offset: int) -> int:
        """Apply one facts message; log the events it accepted as one changelog record."""
        result = BatchResult()
        lines = [line for line in value.split(b"\n") if line]
        logged = []
        async with ledger_lock:  # never while a publication is computed in a thread
            owner.apply_batch(lines, headers.get(SOURCE_HEADER, b"").decode(), into=result)
            for key, record in log_records(offset, result.accepted):
                ledger_log.data[key] = record
                logged.append(ledger_log.send_changelog(0, key, record))
        if arrivals := headers.get(ARRIVAL_HEADER):
            owner.arrivals_seconds.extend(int(ms) / 1000 for ms in arrivals.split(b","))
        report_overflow()
        for bad, error in result.invalid:
            ops.rejected.labels("ledger").inc()
            log.warning("dead-lettered a fact the ledger cannot hold: %s", error)
            await dead_letters.send(value=bad, headers=[("revpulse-reason", str(error).encode())])
        for conflicting_value, conflicting in result.conflicts:
            ops.conflicting.labels(conflicting.type).inc()
            reason = conflict_reason(conflicting)
            log.warning("dead-lettered: %s", reason)
            await dead_letters.send(
                value=conflicting_value, headers=[("revpulse-reason", reason.encode())]
            )
        for duplicate in result.duplicates:
            ops.duplicates.labels(duplicate.type).inc()
        for late_value, late in result.late:
            ops.late.labels(late.type).inc()
            reason = f"later than the allowed lateness ({policy.lateness})"
            await late_topic.send(value=late_value, headers=[("revpulse-reason", reason.encode())])
        for sent in logged:  # delivered before the next record: one record per
            await sent  # changelog batch (Tansu reports a batch's base offset as its end)
        return len(result.accepted)

    async def read_skipped(start: int, end: int) -> None:
        """Apply the facts messages from ``start`` to before ``end`` read directly."""
        records = await read_range(settings.kafka_bootstrap, settings.facts_topic, 0, start, end)
        accepted = 0
        for record in records:
            headers = dict(record.headers or [])
            accepted += await apply_message(record.value or b"", headers, record.offset)
        if accepted:  # usually 0: messages after the last logged one that added nothing
            ops.facts_gaps.inc(accepted)
            log.warning(
                "facts offsets %d-%d had been skipped: %d events applied", start, end - 1, accepted
            )

    @app.agent(facts_topic)
    async def ledger(stream: Any) -> AsyncIterator[None]:
        """Apply each facts message and log the events it accepted, one changelog record.

        One message at a time, acked by Faust after it is done: not ``take()`` batches,
        which lost the message after a full batch across a rebalance (bench/soak.py).
        Nothing is awaited between applying and queueing the record, and Faust flushes
        queued records before it commits an offset, so no applied event goes unlogged.
        A message past the expected offset (after the last one logged) means the consumer
        skipped some: they are read directly first. Reading one twice is harmless.
        """
        event: EventT[bytes]
        async for event in stream.events():
            while not recovery_done():  # a message read before a rebalance: wait it out
                await asyncio.sleep(0.05)
            async with ledger_lock:
                rebuild_if_needed()
            offset = event.message.offset
            if expected[0] is not None and offset > expected[0]:
                await read_skipped(expected[0], offset)
            await apply_message(event.value, dict(event.message.headers or []), offset)
            expected[0] = max(offset + 1, expected[0] or 0)
            yield None

    async def publish_once() -> None:
        owns = facts_tp in app.assignor.assigned_actives()
        ops.ledger_owner.set(1 if owns else 0)
        if not owns:
            publish_health.succeeded()  # nothing to publish here: not this worker's failure
            if owner.ready:
                log.info("ledger partition moved to another worker")
                owner.drop()
                for sink in sinks:
                    await sink.withdraw()
            return
        if not owner.ready and recovery_done():
            async with ledger_lock:
                rebuild_if_needed()
        if not owner.ready:
            return
        started = time.perf_counter()
        try:
            # in a thread, so the loop (ingestion, probes, /readyz) is not held meanwhile;
            # the lock keeps the ledger agent from changing the ledger until it is done
            async with ledger_lock:
                publication = await asyncio.to_thread(owner.publication, dt.datetime.now(dt.UTC))
        except Exception as error:  # a publish that cannot be computed is a failed publish
            publish_failed("compute", error, log_traceback=True)
            return
        if publication is None:  # nothing new: the sinks are current, unless failing
            await _check_sinks()
            if publish_health.problem() is None:
                ops.last_publish_success.set(time.time())
            return
        ops.publish_seconds.labels("compute").observe(time.perf_counter() - started)
        if owner.ledger is not None:
            ops.ledger_events.set(owner.ledger.accepted_count)
        await _publish(publication)

    def publish_failed(step: str, error: Exception, *, log_traceback: bool) -> None:
        """Counted, shown on /readyz until a publish succeeds, and retried next tick."""
        ops.publish_failures.labels(step).inc()
        publish_health.failed(time.time(), f"{step}: {_reason_text(error)}")
        owner.publish_failed()
        if log_traceback:
            log.error("publish failed (%s); will retry", step, exc_info=error)
        else:
            log.warning("publish failed: %s; will retry", error)

    async def _check_sinks() -> None:
        """A sink that lost what it holds (Redis restarted) is a failed publish, even with
        nothing new: the next publish then writes everything."""
        for sink in sinks:
            try:
                await sink.check()
            except SinkUnavailableError as error:
                ops.sink_errors.labels(sink.name).inc()
                publish_failed(sink.name, error, log_traceback=False)

    async def _publish(publication: Publication) -> None:
        delivered = True
        for sink in sinks:
            started = time.perf_counter()
            try:
                await sink.publish(publication)
            except SinkUnavailableError as error:
                ops.sink_errors.labels(sink.name).inc()
                publish_failed(sink.name, error, log_traceback=False)
                delivered = False
            except Exception as error:  # a sink's own bug: the same, with its traceback
                ops.sink_errors.labels(sink.name).inc()
                publish_failed(sink.name, error, log_traceback=True)
                delivered = False
            else:
                ops.sink_last_success.labels(sink.name).set(time.time())
                ops.publish_seconds.labels(sink.name).observe(time.perf_counter() - started)
        now = time.time()
        for arrival in owner.arrivals_seconds:
            ops.latency.observe(max(0.0, now - arrival))
        owner.arrivals_seconds.clear()
        if not delivered:
            return  # a band change stays with the owner until every sink took it
        owner.published()
        publish_health.succeeded()
        ops.last_publish_success.set(time.time())
        if publication.band is not None and ledger_log.data.get(BAND_KEY) != (
            band := publication.band.encode()
        ):
            # kept with the ledger, so the next owner knows the band it takes over
            ledger_log.data[BAND_KEY] = band
            await ledger_log.send_changelog(0, BAND_KEY, band)
        if publication.band_change is not None:
            ops.band_changes.labels(publication.band_change.current).inc()
            body = json.dumps(publication.band_change.as_dict()).encode()
            await alerts_topic.send(key=b"marketing_acv_band", value=body)

    @app.timer(settings.publish_interval_seconds)
    async def publisher() -> None:
        try:
            await publish_once()
        except Exception as error:  # a failed publish must never stop the worker
            publish_failed("other", error, log_traceback=True)

    @app.task
    async def loop_lag_probe() -> None:
        """How late a short sleep wakes: the longest the loop was held by other work."""
        while True:
            started = time.perf_counter()
            await asyncio.sleep(LOOP_PROBE_SECONDS)
            ops.loop_lag.observe(max(0.0, time.perf_counter() - started - LOOP_PROBE_SECONDS))

    @app.timer(5.0)
    async def lag_probe() -> None:
        consumer = app.consumer
        for tp in app.assignor.assigned_actives():
            try:
                highwater = consumer.highwater(tp)
                position = await consumer.position(tp)
            except Exception:
                continue
            if highwater is not None and position is not None:
                lag = max(0, highwater - position)
                ops.consumer_lag.labels(tp.topic, str(tp.partition)).set(lag)

    @app.task
    async def start_sinks() -> None:
        for sink in sinks:
            await sink.start()

    @app.page("/metrics")
    async def metrics_page(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        # aiohttp wants the charset apart from the content type
        content_type = CONTENT_TYPE_LATEST.split(";")[0] + "; version=0.0.4"
        # in a thread: a large registry takes a while to render
        body = await asyncio.to_thread(generate_latest, registry)
        return web.bytes(body, content_type=content_type)

    @app.page("/healthz")
    async def healthz(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        return web.json({"status": "alive"})

    @app.page("/readyz")
    async def readyz(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        # ready = table recovery done and Kafka and Redis reachable; the body says which not
        ready, body = await probes.readiness(
            recovery_done(), owns_ledger=owner.ready, publish_problem=publish_health.problem()
        )
        return web.json(body, status=200 if ready else 503)

    del intake, ledger, publisher, lag_probe, loop_lag_probe, start_sinks
    del metrics_page, healthz, readyz
    return Service(app, owner, sinks, registry, ops, publish_health)
