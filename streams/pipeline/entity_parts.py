"""The entity partitions' parts of the state copy ``--as-of`` reads: each worker writes,
for each by-entity partition it holds, a part of its own (``entities-<partition>``)
with that partition's contracts (as booked) and churns, and no buckets (the ledger's
part has them), so no one place keeps every contract.

On each tick (the publish interval) a part gets what changed since its last write
(models.entities.EntityState.take_delta); the first write after this worker took the
partition (loaded its state from the table: a start, a takeover, a rebalance) is in
full, read a page at a time with the stage's lock let go between pages, and replaces
the copy an earlier owner left. A write that fails makes the next one full, and is shown
on /readyz (PartsHealth) until that part is written again; so is a part whose state could
not be loaded or read (counted under the sink's name too, as the failed writes are). Such
a part is tried again every tick: it is logged on the first failure of a streak only (with
the traceback, unless the sink was unreachable), and once more when it is written again.
One part that fails leaves the others written. A partition revoked is no longer written
here: the revoke waits for a write under way to end.

Each part is bounded from its own clock (the wall clock, or with REVPULSE_CLOCK=event
the latest event time its partition applied, which is never later than the ledger's
watermark once the ledger has what the partition sent) and records what it answers, as
the ledger's part does: the reader answers only what every part answers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal

from models.entities import EntityState
from models.state import StateDelta
from sinks.base import PartSink
from sinks.errors import SinkUnavailableError
from sinks.ops_metrics import OpsMetrics
from streams.pipeline.entity_stage import EntityStage
from streams.pipeline.health import PartsHealth
from streams.pipeline.intake import reason_text
from streams.pipeline.owner import STATE_PAGE_CONTRACTS
from streams.pipeline.partitioned_stage import StagePart

log = logging.getLogger(__name__)

PartClock = Callable[[EntityState], dt.datetime | None]


def entity_part(partition: int) -> str:
    """The state part a by-entity partition writes (sinks.redis_keys.PART_NAME)."""
    return f"entities-{partition}"


def part_clock(mode: Literal["wall", "event"]) -> PartClock:
    """What a part is bounded from: the wall clock, or its partition's latest event time
    (None before its first event: the part is kept whole, recording no reach)."""
    if mode == "event":
        return lambda state: state.watermark
    return lambda _state: dt.datetime.now(dt.UTC)


class EntityParts:
    def __init__(
        self,
        *,
        stage: EntityStage,
        sink: PartSink,
        ops: OpsMetrics,
        health: PartsHealth,
        clock: PartClock,
        page_size: int = STATE_PAGE_CONTRACTS,
    ) -> None:
        """``health``: each part whose last write failed, for /readyz. ``page_size``:
        contracts (and churns) read per page of a full write."""
        self.stage = stage
        self.sink = sink
        self.ops = ops
        self.health = health
        self.clock = clock
        self.page_size = page_size
        # per partition, the state whose part was last written (in full, then each delta
        # since): a part of the stage that is not this one is written in full
        self.written: dict[int, StagePart[EntityState]] = {}
        self.days: dict[int, dt.date | None] = {}  # per partition, its last write's day
        # per partition whose part was not written (its state not loaded or read, or the
        # write failed), the attempts that failed in a row: logged on the first only
        self.failing: dict[int, int] = {}
        self.lock = asyncio.Lock()  # held while a part is written
        # exported at 0 from the start, so that Prometheus' increase() sees the first failure
        ops.sink_errors.labels(sink.name)

    async def start(self) -> None:
        await self.sink.start()

    async def close(self) -> None:
        """The worker stops: the sink lets go of its connections (a failure is logged).
        Not under ``lock``, so that a write under way to a Redis that does not answer
        cannot hold the stop: such a write fails instead, and whoever holds the partition
        next writes its part in full anyway."""
        try:
            await self.sink.close()
        except Exception:
            log.warning("closing the entity parts' sink %s failed", self.sink.name,
                        exc_info=True)  # fmt: skip

    async def tick(self) -> None:
        """Write every part this worker holds. A part that cannot be loaded, read or
        written is counted and shown on /readyz, and the others are written all the same;
        a failure never stops the worker."""
        try:
            async with self.lock:
                await self.load_held()
                for partition in sorted(self.stage.parts):
                    await self.write(partition)
        except Exception:
            log.exception("writing the entity parts of the state copy failed; will retry")

    async def forget_revoked(self, _sender: Any, revoked: Iterable[Any], **_kwargs: Any) -> None:
        """Partitions taken away: no longer written here, once a write under way ends."""
        async with self.lock:
            for tp in revoked:
                self.written.pop(tp.partition, None)
                self.days.pop(tp.partition, None)
                self.failing.pop(tp.partition, None)
                self.sink.forget(entity_part(tp.partition))
                self.health.clear(entity_part(tp.partition))

    async def load_held(self) -> None:
        """Load the state of each partition this worker holds and has not loaded yet (no
        message came since it took it), so that its part is written in full."""
        stage = self.stage
        if not stage.recovery_done():
            return
        for partition in range(stage.partitions):
            if partition in stage.parts or not stage.holds(partition):
                continue
            try:
                async with stage.lock:
                    if partition not in stage.parts and stage.holds(partition):
                        await stage.part(partition)
            except Exception as error:  # tried again next tick
                self.not_written(partition, "loading its state", error)

    async def write(self, partition: int) -> None:
        part = self.stage.parts.get(partition)
        if part is None:
            return
        full = self.written.get(partition) is not part
        try:
            taken = await self.take(part, full=full)
        except Exception as error:  # what was taken of the part is lost: the next write is full
            self.not_written(partition, "reading its state", error)
            return
        if taken is None:
            return  # dropped meanwhile: read from its table again, written in full
        delta, clock = taken
        day = None if clock is None else clock.astimezone(dt.UTC).date()
        if not full and not delta and day == self.days.get(partition):
            return  # nothing new, and nothing fell out of reach
        delta.part = entity_part(partition)
        try:
            await self.sink.write(delta, clock)
        except Exception as error:  # what the delta held is lost: the next write is full
            self.not_written(partition, self.sink.name, error)
            return
        self.written[partition] = part
        self.days[partition] = day
        self.health.clear(delta.part)
        self.written_again(partition)
        # what the sink-failing alert reads: on a worker that does not own the ledger,
        # only its parts' writes say the sink works again after a failure
        self.ops.sink_last_success.labels(self.sink.name).set(time.time())

    async def take(
        self, part: StagePart[EntityState], *, full: bool
    ) -> tuple[StateDelta, dt.datetime | None] | None:
        """What to write of ``part`` (what changed since its last write, or with ``full``
        every contract and churn) and the clock it is bounded from; None if the part was
        dropped meanwhile."""
        stage = self.stage
        async with stage.lock:
            if stage.parts.get(part.partition) is not part:
                return None
            delta = part.state.take_delta(full=full)
            clock = self.clock(part.state)
        if full and not await self.read_whole(part, delta):
            return None
        return delta, clock

    def not_written(self, partition: int, cause: str, error: Exception) -> None:
        """The part was not written: ``cause`` is the step that failed (loading or
        reading its state), or the sink's name when its write failed. Counted, shown on
        /readyz until the part is written, and its next write is full. It is tried again
        every tick, so only the first failure of a streak is logged in full (a sink that
        is unreachable without a traceback, anything else with it), the others at debug."""
        self.written.pop(partition, None)
        self.ops.sink_errors.labels(self.sink.name).inc()
        self.health.failed(entity_part(partition), time.time(), f"{cause}: {reason_text(error)}")
        failures = self.failing.get(partition, 0) + 1
        self.failing[partition] = failures
        if failures > 1:
            log.debug("entity part %d: not written again (%d in a row): %s: %s",
                      partition, failures, cause, reason_text(error))  # fmt: skip
            return
        # a sink that is unreachable says all in its reason; anything else gets its traceback
        traceback = None if isinstance(error, SinkUnavailableError) else error
        log.log(logging.WARNING if traceback is None else logging.ERROR,
                "entity part %d of the state copy not written (%s: %s); tried again every "
                "tick, not logged again until it is written", partition, cause,
                reason_text(error), exc_info=traceback)  # fmt: skip

    def written_again(self, partition: int) -> None:
        """The part was written: a streak of failures to load, read or write it is over."""
        failures = self.failing.pop(partition, 0)
        if failures:
            log.info("entity part %d of the state copy written again after %d failed attempts",
                     partition, failures)  # fmt: skip

    async def read_whole(self, part: StagePart[EntityState], delta: StateDelta) -> bool:
        """Every contract and churn of the part into ``delta``, a page at a time, each
        page read on a thread under the stage's lock; False if the part was dropped
        meanwhile (it is written in full once it is read again)."""
        stage, state = self.stage, part.state
        after: str | None = None
        while True:
            async with stage.lock:
                if stage.parts.get(part.partition) is not part:
                    return False
                contracts = await asyncio.to_thread(state.contract_page, after, self.page_size)
            delta.contracts.update((c.contract_id, c) for c in contracts)
            if len(contracts) < self.page_size:
                break
            after = contracts[-1].contract_id
        after = None
        while True:
            async with stage.lock:
                if stage.parts.get(part.partition) is not part:
                    return False
                churns = await asyncio.to_thread(state.churn_page, after, self.page_size)
            delta.churns.update(churns)
            if len(churns) < self.page_size:
                return True
            after = churns[-1][0]
