"""A worker's local state: its data directory, held by one worker at a time, and the
table store in it, started afresh when the changelog it was read from is gone.

The embedded broker keeps data in memory only. After it restarts, the changelog is
empty or shorter, while the local store remembers an offset past its end; Faust would
then read nothing and keep what the lost broker held (faust-streaming issue 158).
"""

from __future__ import annotations

import fcntl
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from faust.types import TP

from streams.errors import StackError

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
