"""The ledger stage: applies each facts message to the ledger and logs the events it
accepted in the ledger-log table; rebuilds the ledger from that table after a recovery.

A facts message past the expected offset means the consumer skipped some (Faust can,
around rebalances): they are read directly first. Reading one twice is harmless.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any

from faust.types import EventT

from models.band import BAND_NAMES, Band
from sinks.ops_metrics import OpsMetrics
from streams.pipeline.intake_stage import ARRIVAL_HEADER, SOURCE_HEADER
from streams.pipeline.ledger_log import BAND_KEY, log_records, next_facts_offset
from streams.pipeline.owner import BatchResult, LedgerOwner, conflict_reason
from streams.pipeline.ports import LogTable, ReadRange, Topic

log = logging.getLogger(__name__)
# the records of the ledger-log changelog's last batch, read directly
ReadEnd = Callable[[], Awaitable[Sequence[Any]]]


async def no_records() -> Sequence[Any]:
    return ()


RECOVERY_POLL_SECONDS = 0.05
# events applied before the loop may run other work: ~10 ms of ledger work at most
APPLY_CHUNK_EVENTS = 100
LOGGED_BANDS: dict[bytes, Band] = {name.encode(): name for name in BAND_NAMES}


class LedgerStage:
    def __init__(
        self,
        *,
        owner: LedgerOwner,
        table: LogTable,
        dead_letters: Topic,
        late: Topic,
        ops: OpsMetrics,
        read_facts: ReadRange,
        recovery_done: Callable[[], bool],
        changelog_left: Callable[[], int] = lambda: 0,
        read_changelog_end: ReadEnd = no_records,
    ) -> None:
        self.owner = owner
        self.table = table
        self.dead_letters = dead_letters
        self.late = late
        self.ops = ops
        self.read_facts = read_facts
        self.recovery_done = recovery_done
        self.changelog_left = changelog_left  # records the table recovery has yet to read
        self.read_changelog_end = read_changelog_end
        # held while the ledger changes, and while a publication is computed from it
        self.lock = asyncio.Lock()
        # the facts offset the ledger expects next (after the last one logged)
        self.expected_offset: int | None = None
        # a facts message whose changelog records were not all delivered: read it again
        self.unlogged_offset: int | None = None
        # (records read, records) while the ledger is rebuilt from the table
        self.rebuild_progress: tuple[int, int] | None = None

    def recovery_problem(self) -> str | None:
        """What the recovery is still doing, for /readyz; None once it is done."""
        if not self.recovery_done():
            left = self.changelog_left()
            return "table recovery in progress" + (
                f": {left:,} changelog records left to read" if left > 0 else ""
            )
        if (progress := self.rebuild_progress) is not None:
            done, records = progress
            return f"rebuilding the ledger from its table: record {done:,} of {records:,}"
        return None

    async def run(self, stream: Any) -> AsyncIterator[None]:
        """The agent: apply each facts message and log the events it accepted.

        One message at a time, acked by Faust after it is done: not ``take()`` batches,
        which lost the message after a full batch across a rebalance (bench/soak.py).
        Nothing is awaited between applying and queueing the record, and Faust flushes
        queued records before it commits an offset, so no applied event goes unlogged.
        """
        event: EventT[bytes]
        async for event in stream.events():
            await self.handle(event.value, dict(event.message.headers or []), event.message.offset)
            yield None

    async def handle(self, value: bytes, headers: dict[str, bytes], offset: int) -> None:
        while not self.recovery_done():  # a message read before a rebalance: wait it out
            await asyncio.sleep(RECOVERY_POLL_SECONDS)
        async with self.lock:
            await self.rebuild_if_needed()
        expected = self.expected_offset
        if expected is not None and offset > expected:
            await self.read_skipped(expected, offset)
        await self.apply_message(value, headers, offset)
        self.expected_offset = max(offset + 1, self.expected_offset or 0)

    async def rebuild_if_needed(self) -> None:
        """Rebuild the ledger from the table, in a thread so that the loop keeps serving
        /metrics, /readyz and the intake meanwhile; the caller holds the lock."""
        if self.owner.ready:
            return
        await self.keep_changelog_end()
        data = self.table.data
        # the keys in the order they were written; values read one at a time, so a rebuild
        # never holds the whole log in memory on top of the store
        keys = sorted(key for key in data if key != BAND_KEY)
        band = data.get(BAND_KEY)

        def values() -> Iterator[bytes]:
            for done, key in enumerate(keys):
                self.rebuild_progress = (done, len(keys))
                yield data[key]

        try:
            built = await asyncio.to_thread(self.owner.build_from_log, values())
        finally:
            self.rebuild_progress = None
        # installed here, on the loop: a rebuild cancelled by a rebalance installs nothing
        count = self.owner.install(
            *built, band=LOGGED_BANDS.get(band) if band is not None else None
        )
        self.expected_offset = next_facts_offset(keys)
        if self.unlogged_offset is not None:  # read that message again, past what it logged
            self.expected_offset, self.unlogged_offset = self.unlogged_offset, None
        self.ops.ledger_recovered.set(1)
        self.ops.rebuilt_events.set(count)
        log.info("ledger rebuilt from its changelog: %d accepted events", count)
        if self.owner.rebuild_rejects:
            self.drop_rebuild_rejects(keys)
        self.report_overflow()

    def forget_unlogged(self, offset: int) -> None:
        """A changelog record was not delivered: the ledger holds events the log does not.
        Drop the ledger, so that the next message rebuilds it from the log and reads the
        facts from ``offset`` on again (the events it did log are duplicates then)."""
        log.error(
            "the ledger changelog did not take a record of facts offset %d: the ledger "
            "is rebuilt from its log and that message applied again",
            offset,
        )
        self.owner.drop()
        self.unlogged_offset = offset

    async def keep_changelog_end(self) -> None:
        """Keep the records of the changelog's last batch the table recovery did not read
        (Tansu reports a partition's end as its last batch's base offset + 1, and Faust's
        recovery stops there); each later record of a key wins, as in a recovery."""
        missing = 0
        for record in await self.read_changelog_end():
            if record.key is None or record.value is None:
                continue
            if self.table.data.get(record.key) != record.value:
                missing += 1
            self.table.keep(record.key, record.value, record.offset)
        if missing:
            log.warning(
                "the table recovery stopped short of the changelog's end: kept the %d "
                "records of its last batch it had not read",
                missing,
            )

    def drop_rebuild_rejects(self, keys: list[bytes]) -> None:
        """Dead-letter the logged events the rebuild skipped, and log their records again
        without them, so the next rebuild neither meets nor dead-letters them again."""
        rejects = self.owner.rebuild_rejects
        self.owner.rebuild_rejects = []
        log.error("the ledger changelog holds %d events the ledger cannot hold: skipped and "
                  "dead-lettered", len(rejects))  # fmt: skip
        dropped: dict[int, set[bytes]] = {}
        for rejected in rejects:
            self.ops.rejected.labels("ledger").inc()
            log.warning("skipped a logged event: %s", rejected.error)
            dropped.setdefault(rejected.batch, set()).add(rejected.line)
            reason = f"in the ledger changelog: {rejected.error}"
            self.dead_letters.send_soon(
                value=rejected.line, headers=[("revpulse-reason", reason.encode())]
            )
        for index, lines in dropped.items():
            key = keys[index]
            kept = b"\n".join(
                line for line in self.table.data[key].splitlines() if line not in lines
            )
            self.table.log(key, kept)

    def report_overflow(self) -> None:
        """Each channel past the cap logged once and counted: one line per batch, as a
        flood of new channels would otherwise be thousands of lines on the loop."""
        channels = self.owner.new_overflowed_channels()
        if channels:
            self.ops.channels_overflowed.inc(len(channels))
            log.warning("%d channel(s) over the cap of %d, counted under 'overflow': %s",
                        len(channels), self.owner.policy.max_channels,
                        ", ".join(channels))  # fmt: skip

    async def apply_message(self, value: bytes, headers: dict[str, bytes], offset: int) -> int:
        """Apply one facts message, a chunk at a time, and log the events each chunk
        accepted as a changelog record of its own.

        Nothing is awaited between applying a chunk and queueing its record; between
        chunks the loop serves everything else, so a large message never holds it for
        long. The records of one offset sort in the order they were written, which is
        the order a rebuild applies them in.
        """
        result = BatchResult()
        lines = [line for line in value.split(b"\n") if line]
        source = headers.get(SOURCE_HEADER, b"").decode()
        for start in range(0, len(lines), APPLY_CHUNK_EVENTS):
            accepted_before = len(result.accepted)
            async with self.lock:  # never while a publication is computed in a thread
                self.owner.apply_batch(
                    lines[start : start + APPLY_CHUNK_EVENTS], source, into=result
                )
                logged = [
                    self.table.log(key, record)
                    for key, record in log_records(offset, result.accepted[accepted_before:])
                ]
            try:
                for sent in logged:  # delivered before the next record: one record per
                    await sent  # changelog batch (Tansu reports a batch's base offset as its end)
            except Exception:
                self.forget_unlogged(offset)
                raise
            if not logged:
                await asyncio.sleep(0)
        if arrivals := headers.get(ARRIVAL_HEADER):
            self.owner.arrivals_seconds.extend(int(ms) / 1000 for ms in arrivals.split(b","))
        self.report_overflow()
        await self.send_refused(result)
        return len(result.accepted)

    async def send_refused(self, result: BatchResult) -> None:
        """Counted, and sent on: invalid and conflicting events to the dead letters, late
        ones to the late topic; duplicates only counted."""
        for bad, error in result.invalid:
            self.ops.rejected.labels("ledger").inc()
            log.warning("dead-lettered a fact the ledger cannot hold: %s", error)
            await self.dead_letters.send(
                value=bad, headers=[("revpulse-reason", str(error).encode())]
            )
        for conflicting_value, conflicting in result.conflicts:
            self.ops.conflicting.labels(conflicting.type).inc()
            reason = conflict_reason(conflicting)
            log.warning("dead-lettered: %s", reason)
            await self.dead_letters.send(
                value=conflicting_value, headers=[("revpulse-reason", reason.encode())]
            )
        for duplicate in result.duplicates:
            self.ops.duplicates.labels(duplicate.type).inc()
        for late_value, late in result.late:
            self.ops.late.labels(late.type).inc()
            reason = f"later than the allowed lateness ({self.owner.policy.lateness})"
            await self.late.send(value=late_value, headers=[("revpulse-reason", reason.encode())])

    async def read_skipped(self, start: int, end: int) -> None:
        """Apply the facts messages from ``start`` to before ``end`` read directly."""
        records = await self.read_facts(0, start, end)
        accepted = 0
        for record in records:
            headers = dict(record.headers or [])
            accepted += await self.apply_message(record.value or b"", headers, record.offset)
        if accepted:  # usually 0: messages after the last logged one that added nothing
            self.ops.facts_gaps.inc(accepted)
            log.warning(
                "facts offsets %d-%d had been skipped: %d events applied", start, end - 1, accepted
            )
