"""The ledger stage: applies each facts message to the ledger, whose state lives in the
ledger-state table (streams.pipeline.state_table), and sends what each chunk changed
to the table's changelog; loads the ledger from the table after a recovery.

A facts message past the expected offset means the consumer skipped some (Faust can,
around rebalances): they are read directly first. Reading one twice is harmless.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from faust.types import EventT

from models.band import BAND_NAMES, Band
from models.entity_codecs import decode_changes
from models.keyed import COUNT
from models.ledger import Ledger
from sinks.ops_metrics import OpsMetrics
from streams.pipeline.gate_stage import STAMP_HEADER, parse_stamp
from streams.pipeline.intake_stage import ARRIVAL_HEADER, SOURCE_HEADER
from streams.pipeline.ledger_log import BAND_KEY, next_facts_offset
from streams.pipeline.log_table import keep_records_past_recovery
from streams.pipeline.outcomes import BatchResult, send_refused
from streams.pipeline.owner import LedgerOwner, RebuildReject
from streams.pipeline.ports import LogTable, ReadRange, Topic
from streams.pipeline.state_table import Record, TableMaps

log = logging.getLogger(__name__)
# records read directly: the changelog's last batch, or a whole earlier changelog
ReadRecords = Callable[[], Awaitable[Sequence[Any]]]


async def no_records() -> Sequence[Any]:
    return ()


@dataclass
class TableRecovery:
    """What the stage needs to know of the table's recovery, and to read around it."""

    done: Callable[[], bool]  # Faust's recovery of the table has finished
    changelog_left: Callable[[], int] = lambda: 0  # records it has yet to read
    # the records of the changelog's last batch, read directly (Tansu reports a
    # partition's end as its last batch's base offset + 1, and Faust stops there)
    read_changelog_end: ReadRecords = no_records
    # the ledger-log changelog of versions before the ledger-state table, if any
    read_legacy_log: ReadRecords = no_records


RECOVERY_POLL_SECONDS = 0.05
# events applied before the loop may run other work: ~10 ms of ledger work at most
APPLY_CHUNK_EVENTS = 100
# entries of the ids' index by day read after each chunk, by the pass that forgets the
# ids past the dedup horizon (models.id_gate): ten times the ids a chunk adds
FORGET_IDS_PER_CHUNK = 1000
# logged batches of the legacy ledger-log applied between two flushes of the state
LEGACY_BATCHES_PER_FLUSH = 20
LOGGED_BANDS: dict[bytes, Band] = {name.encode(): name for name in BAND_NAMES}
NEXT_FACTS_OFFSET = "next_offset"  # in the stage.facts map
LEGACY_MIGRATED = "legacy_log_migrated"
ENTITY_SENDER = "e"  # a stamp's sender that starts so is an entity partition: changes


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
        recovery: TableRecovery,
    ) -> None:
        self.owner = owner
        self.table = table
        self.maps = TableMaps(table)
        self.facts = self.maps.open("stage.facts", COUNT)  # next offset, migration mark
        # per sender (a by-id partition, or an entity partition: "e<n>"), the highest
        # offset whose admitted events (or changes) were applied
        self.gates = self.maps.open("stage.gates", COUNT)
        self.dead_letters = dead_letters
        self.late = late
        self.ops = ops
        self.read_facts = read_facts
        self.recovery = recovery
        # held while the ledger changes, and while a publication is computed from it
        self.lock = asyncio.Lock()
        # the facts offset the ledger expects next
        self.expected_offset: int | None = None
        # a facts message whose changes were not all delivered: read it again
        self.unlogged_offset: int | None = None
        self.loading: str | None = None  # what a load of the ledger is doing now

    def recovery_problem(self) -> str | None:
        """What the recovery is still doing, for /readyz; None once it is done."""
        if not self.recovery.done():
            left = self.recovery.changelog_left()
            return "table recovery in progress" + (
                f": {left:,} changelog records left to read" if left > 0 else ""
            )
        return self.loading

    async def run(self, stream: Any) -> AsyncIterator[None]:
        """The agent: apply each facts message and send what it changed.

        One message at a time, acked by Faust after it is done: not ``take()`` batches,
        which lost the message after a full batch across a rebalance (bench/soak.py).
        Every change of a message is delivered to the changelog before the message is
        done, so no offset is committed past a change the changelog does not hold.
        """
        event: EventT[bytes]
        async for event in stream.events():
            await self.handle(event.value, dict(event.message.headers or []), event.message.offset)
            yield None

    async def handle(self, value: bytes, headers: dict[str, bytes], offset: int) -> None:
        while not self.recovery.done():  # a message read before a rebalance: wait it out
            await asyncio.sleep(RECOVERY_POLL_SECONDS)
        async with self.lock:
            await self.load_if_needed()
        expected = self.expected_offset
        if expected is not None and offset > expected:
            await self.read_skipped(expected, offset)
        await self.apply_message(value, headers, offset)
        self.expected_offset = max(offset + 1, self.expected_offset or 0)

    async def load_if_needed(self) -> None:
        """Load the ledger from the table (on a thread, so the loop keeps serving
        /metrics, /readyz and the intake meanwhile); the caller holds the lock.

        The load reads what the metrics read (buckets, the book timeline's day sums,
        channels, marks), not the entities: its cost follows the retention and the days
        that carry an amount, not the number of events ever accepted."""
        if self.owner.ready:
            return
        await self.keep_changelog_end()
        redone = self.maps.discard()  # writes of another time, and the last flush if cut
        if redone:
            log.warning("the last flush of the ledger state was cut short: %d of its "
                        "writes are sent again", redone)  # fmt: skip
        self.loading = "loading the ledger state from its table"
        try:
            ledger = await asyncio.to_thread(self.owner.load, self.maps)
            if not self.facts.get(LEGACY_MIGRATED):
                await self.migrate_legacy_log(ledger)
        finally:
            self.loading = None
        band = self.table.get(BAND_KEY)
        count = self.owner.install(ledger, band=LOGGED_BANDS.get(band) if band else None)
        self.expected_offset = self.facts.get(NEXT_FACTS_OFFSET)
        if self.unlogged_offset is not None:  # read that message again
            self.expected_offset, self.unlogged_offset = self.unlogged_offset, None
        await self.send_changes(self.take_changes(ledger), self.expected_offset)
        self.ops.ledger_recovered.set(1)
        self.ops.rebuilt_events.set(count)
        log.info("ledger loaded from its table: %d accepted events", count)
        self.report_overflow()

    async def migrate_legacy_log(self, ledger: Ledger) -> None:
        """Once: the events an earlier version logged in the ledger-log table, applied to
        the state (each one the state holds already is a duplicate), a few batches per
        flush; then the migration is marked done. One the ledger cannot hold is
        dead-lettered."""
        records = await self.recovery.read_legacy_log()
        latest: dict[bytes, bytes] = {}  # as compaction keeps them: the last per key
        for record in records:
            if record.key is not None and record.key[:1].isdigit() and record.value is not None:
                latest[record.key] = record.value
        keys = sorted(latest)  # the order they were applied in
        if keys:
            log.warning("migrating the ledger-log changelog of an earlier version: %d "
                        "records", len(keys))  # fmt: skip
        rejects: list[RebuildReject] = []
        for first in range(0, len(keys), LEGACY_BATCHES_PER_FLUSH):
            self.loading = f"migrating the ledger-log changelog: record {first:,} of {len(keys):,}"
            part = [latest[key] for key in keys[first : first + LEGACY_BATCHES_PER_FLUSH]]
            rejects += await asyncio.to_thread(self.owner.restore_log, ledger, part, first)
            await self.send_changes(self.take_changes(ledger), None)
        if (next_offset := next_facts_offset(keys)) is not None:
            self.facts.put(NEXT_FACTS_OFFSET, next_offset)
        self.facts.put(LEGACY_MIGRATED, 1)
        await self.send_changes(self.take_changes(ledger), None)
        if keys:
            log.warning("migrated the ledger-log changelog: %d accepted events now in the "
                        "ledger-state table; the old changelog is no longer read",
                        ledger.accepted_count)  # fmt: skip
        self.dead_letter_rejects(rejects)

    def take_changes(self, ledger: Ledger | None) -> tuple[list[Record], list[Record]]:
        """What changed since the last flush, as records (the caller holds the lock):
        the ledger first writes what it keeps in memory between flushes."""
        if ledger is not None:
            ledger.store_changes()
        return self.maps.take_records()

    async def send_changes(
        self, taken: tuple[list[Record], list[Record]], offset: int | None
    ) -> None:
        """Send the changes a flush took (``maps.take_records()``, under the lock, as the
        publisher's prune changes the maps from a thread): the write-ahead records first,
        then one record per changed key once the broker has those, so that a crash in
        between leaves a complete set of changes to send again (TableMaps.recover)."""
        wal, records = taken
        try:
            for batch in (wal, records):
                await self.table.send(batch)
        except Exception:
            self.forget_unlogged(offset)
            raise
        self.maps.settle()

    def forget_unlogged(self, offset: int | None) -> None:
        """A changelog record was not delivered: the ledger holds changes the table does
        not. Drop the ledger, so that the next message loads it from the table and reads
        the facts from ``offset`` on again."""
        log.error(
            "the ledger changelog did not take a change of facts offset %s: the ledger is "
            "loaded from its table again and that message applied again",
            offset,
        )
        self.owner.drop()
        if offset is not None:
            self.unlogged_offset = offset

    async def keep_changelog_end(self) -> None:
        """Keep the records of the changelog's last batch the table recovery did not read
        (Tansu reports a partition's end as its last batch's base offset + 1, and Faust's
        recovery stops there); each later record of a key wins, as in a recovery."""
        missing = keep_records_past_recovery(self.table, await self.recovery.read_changelog_end())
        if missing:
            log.warning(
                "the table recovery stopped short of the changelog's end: kept the %d "
                "records of its last batch it had not read",
                missing,
            )

    def dead_letter_rejects(self, rejects: list[RebuildReject]) -> None:
        """Dead-letter the logged events a migration skipped."""
        if not rejects:
            return
        log.error("the ledger-log changelog holds %d events the ledger cannot hold: skipped "
                  "and dead-lettered", len(rejects))  # fmt: skip
        for rejected in rejects:
            self.ops.rejected.labels("ledger").inc()
            log.warning("skipped a logged event: %s", rejected.error)
            reason = f"in the ledger changelog: {rejected.error}"
            self.dead_letters.send_soon(
                value=rejected.line, headers=[("revpulse-reason", reason.encode())]
            )

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
        """Apply one facts message, a chunk at a time, then send what it changed.

        Between chunks the loop serves everything else, so a large message never holds
        it for long. The changes of the whole message go out in one flush, coalesced per
        key (a key changed by many of its events is one record), with the offset to read
        from next among them.
        """
        result = BatchResult()
        lines = [line for line in value.split(b"\n") if line]
        stamp = headers.get(STAMP_HEADER)
        if stamp is None:  # from an intake before the id gate: deduplicated here
            await self.apply_lines(lines, headers.get(SOURCE_HEADER, b"").decode(), result)
        else:
            gate_partition, gate_offset = parse_stamp(stamp)
            applied = self.gates.get(gate_partition)
            if applied is not None and gate_offset <= applied:
                log.info("facts@%d repeats by-id[%s]@%d, applied before: skipped",
                         offset, gate_partition, gate_offset)  # fmt: skip
                lines = []
            if lines and gate_partition.startswith(ENTITY_SENDER):
                await self.apply_changes(lines)
            else:
                await self.apply_lines(lines, None, result)
            if lines:
                async with self.lock:
                    self.gates.put(gate_partition, gate_offset)
        async with self.lock:
            self.facts.put(NEXT_FACTS_OFFSET, offset + 1)
            taken = self.take_changes(self.owner.ledger)
        await self.send_changes(taken, offset)
        if arrivals := headers.get(ARRIVAL_HEADER):
            self.owner.arrivals_seconds.extend(int(ms) / 1000 for ms in arrivals.split(b","))
        self.report_overflow()
        await self.send_refused(result)
        return len(result.accepted)

    async def apply_lines(
        self, lines: list[bytes], source: str | None, result: BatchResult
    ) -> None:
        """Apply canonical events a chunk at a time: through the ledger's own dedup and
        lateness from ``source``, or (None) as the id gate admitted them."""
        for start in range(0, len(lines), APPLY_CHUNK_EVENTS):
            chunk = lines[start : start + APPLY_CHUNK_EVENTS]
            async with self.lock:  # never while a publication is computed in a thread
                if source is None:
                    self.owner.apply_admitted(chunk, into=result)
                else:
                    self.owner.apply_batch(chunk, source, into=result)
                    self.owner.forget_ids(FORGET_IDS_PER_CHUNK)
            await asyncio.sleep(0)

    async def apply_changes(self, lines: list[bytes]) -> None:
        """What an entity partition's message changed (streams.pipeline.entity_stage)."""
        changes = [decode_changes(line) for line in lines]
        async with self.lock:  # never while a publication is computed in a thread
            for change in changes:
                self.owner.apply_changes(change)

    async def send_refused(self, result: BatchResult) -> None:
        await send_refused(
            result, policy=self.owner.policy, ops=self.ops, dead_letters=self.dead_letters,
            late=self.late,
        )  # fmt: skip

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
