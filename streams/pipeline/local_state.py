"""A worker's local state: its data directory, held by one worker at a time, and the
table store in it, started afresh when the changelog it was read from is gone.

The embedded broker keeps data in memory only. After it restarts, the changelog is
empty or shorter, while the local store remembers an offset past its end; Faust would
then read nothing and keep what the lost broker held (faust-streaming issue 158).
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from faust.types import TP

from streams.errors import StackError
from streams.kafka.clients import partition_batches, read_last_batch
from streams.pipeline.log_table import FaustLogTable

log = logging.getLogger(__name__)
LOCK_NAME = "worker.lock"


def hold_data_dir(data_dir: Path) -> IO[str]:
    """Lock ``data_dir`` for this process (released when it exits, however it exits).

    Raises StackError when another worker holds it: two workers on one table store
    would each overwrite the other's view of the changelog."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = (data_dir / LOCK_NAME).open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise StackError(
            f"the data directory {data_dir} is in use by {holder}: give each worker its "
            "own REVPULSE_DATA_DIR"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"revpulse worker pid {os.getpid()}\n")
    handle.flush()
    return handle


@dataclass(frozen=True)
class LocalPosition:
    """Where the local store stands against the changelog partition it was read from."""

    persisted_offset: int | None  # the last changelog offset the store holds; None: none
    end_offset: int  # the changelog partition's end (its next offset)

    @property
    def lost_by_broker(self) -> bool:
        """The store holds offsets the changelog no longer has: the broker lost them."""
        return self.persisted_offset is not None and self.persisted_offset >= self.end_offset

    @property
    def tail_records(self) -> int:
        """Changelog records a recovery reads on top of the store (all, once discarded)."""
        if self.persisted_offset is None or self.lost_by_broker:
            return self.end_offset
        return self.end_offset - self.persisted_offset - 1


def check_local_state(
    store: Any, tp: TP, end_offset: int, reported_end: int | None = None
) -> LocalPosition:
    """Compare the table ``store`` with its changelog; discard it if the broker lost what
    it was read from. A store that keeps nothing locally (memory) has no offset.

    ``reported_end``: the end the broker reports, if it differs from the true end (Tansu
    reports the last batch's base offset + 1). Faust's recovery refuses a persisted
    offset past it, so the store's offset is set back to it; the load reads the last
    batch directly, so nothing is missed."""
    position = LocalPosition(store.persisted_offset(tp), end_offset)
    if position.lost_by_broker:
        log.warning(
            "the local table store holds changelog %s up to offset %d, but the changelog "
            "ends at %d: the broker lost it (the embedded broker keeps data in memory only). "
            "Starting the local state afresh from what the changelog holds now",
            tp.topic, position.persisted_offset, end_offset,
        )  # fmt: skip
        store.reset_state()
    elif (
        position.persisted_offset is not None
        and reported_end is not None
        and position.persisted_offset >= reported_end
    ):
        log.info(
            "the local table store holds changelog %s up to offset %d, inside its last "
            "batch, which the broker reports as ending at %d: its offset is set back to %d "
            "and that batch read again directly",
            tp.topic, position.persisted_offset, reported_end, reported_end - 1,
        )  # fmt: skip
        store.set_persisted_offset(tp, reported_end - 1)
    elif position.persisted_offset is not None:
        log.info(
            "the local table store holds changelog %s up to offset %d of %d: recovery "
            "reads the %d records after it",
            tp.topic, position.persisted_offset, end_offset, position.tail_records,
        )  # fmt: skip
    return position


async def prime_local_store(
    table: FaustLogTable,
    bootstrap: str,
    tp: TP,
    end: int,
    reported_end: int,
    on_progress: Callable[[int], None] = lambda _read: None,
) -> int:
    """Read the whole changelog into an empty local store before Faust starts; returns
    the records read.

    Faust's own recovery of a fresh store from a changelog of hundreds of thousands of
    records on the embedded broker stopped receiving records part way (bench.scale at
    100,000 events: 591,163 records, nothing received after 80 s); a plain consumer
    reads a million in seconds. It reads up to ``end`` (the true end, at start); the
    persisted offset is set to the reported end - 1 (the most Faust accepts on Tansu),
    so Faust's recovery reads what was written since (and the rest of the last batch
    again: the same values in the same order). ``on_progress`` is told the records read
    after each batch."""
    read = 0
    async for records in partition_batches(bootstrap, tp.topic, tp.partition, end):
        for record in records:
            if record.key is not None:
                table.put_read(record.key, record.value)
        read += len(records)
        on_progress(read)
    if read:
        table.table.data.set_persisted_offset(tp, reported_end - 1)
    return read


def ready_local_state(
    table: FaustLogTable,
    bootstrap: str,
    changelog: TP,
    *,
    on_disk: bool,
    say: Callable[[str], None] = lambda _doing: None,
) -> int:
    """Before Faust starts: the local store checked against the changelog (and set back
    or started afresh, see :func:`check_local_state`), and an empty one on disk filled
    from the changelog. Returns the changelog records read on top of the store. ``say``
    is told what it is doing, and how far it got (for /readyz meanwhile).

    Not a coroutine: Faust's store must be made outside any event loop but its own."""
    name = f"{changelog.topic}[{changelog.partition}]"
    say(f"checking the local store against changelog {name}")
    store = table.data
    # the end from the last batch itself: Tansu reports its base offset + 1
    last_batch = asyncio.run(read_last_batch(bootstrap, changelog.topic, changelog.partition))
    end = last_batch[-1].offset + 1 if last_batch else 0
    reported_end = last_batch[0].offset + 1 if last_batch else 0
    position = check_local_state(store, changelog, end, reported_end)
    if not (on_disk and end and (position.persisted_offset is None or position.lost_by_broker)):
        return position.tail_records
    started = time.monotonic()

    def progress(read: int) -> None:
        say(f"reading changelog {name} into the empty local store: {read:,} of {end:,} records")

    read = asyncio.run(
        prime_local_store(table, bootstrap, changelog, end, reported_end, on_progress=progress)
    )
    log.info("read %d changelog records into the empty local table store in %.1f s",
             read, time.monotonic() - started)  # fmt: skip
    return read
