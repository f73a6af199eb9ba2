"""Records of the ledger-log table: the accepted events, as the changelog keeps them.

The table is a key-value store, and its changelog is read back into one on recovery:
a key written twice keeps only the second value. After a crash the next owner reads
the facts topic again from the last committed offset, and its batch may start at the
same offset as one the dead owner already logged (holding the events that are new to
it, not the dead owner's). So every write gets a key of its own: the facts offset the
batch starts at (the order of a rebuild), a token unique to this write, and the part.
The token starts with the time of the write, so a rebuild applies two records of one
offset in the order they were applied: the order decides which channels past the cap
get their own label (models/channels.py).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence

BAND_KEY = b"band"  # the last delivered band
# events per record. A record holds what one facts message added (a subset of a message
# Kafka already took), so it is split only past this: never with the default batch size.
LOG_RECORD_EVENTS = 10_000
_last_write_ns = 0


def _write_token() -> str:
    """Unique to one write, and sorting after every earlier write of this process (and,
    as far as the clocks agree, of the owner before)."""
    global _last_write_ns
    _last_write_ns = max(time.time_ns(), _last_write_ns + 1)
    return f"{_last_write_ns:020d}{uuid.uuid4().hex[:12]}"


def log_records(first_offset: int, accepted: Sequence[bytes]) -> list[tuple[bytes, bytes]]:
    """(key, value) records holding ``accepted``: at most LOG_RECORD_EVENTS each."""
    write = _write_token()
    return [
        (
            f"{first_offset:020d}-{write}-{part:05d}".encode(),
            b"\n".join(accepted[start : start + LOG_RECORD_EVENTS]),
        )
        for part, start in enumerate(range(0, len(accepted), LOG_RECORD_EVENTS))
    ]


def next_facts_offset(keys: Iterable[bytes]) -> int | None:
    """The facts offset after the last one logged (None with nothing logged).

    A facts message whose events were all duplicates leaves no record, so this may be
    behind the committed offset; reading from it again is harmless.
    """
    offsets = [int(key.partition(b"-")[0]) for key in keys if key[:1].isdigit()]
    return max(offsets) + 1 if offsets else None
