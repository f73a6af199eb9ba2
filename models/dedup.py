"""The dedup horizon: what the ledger remembers of each accepted event id, and when it
may forget it.

An id is remembered with the digest of what its event said (a re-send with other
content is a conflict) and the UTC day its event occurred on. Once the slowest source's
lateness mark is a horizon past the end of that day, the id may be forgotten: a re-send
of that event is then older than the allowed lateness (the horizon is never shorter),
so it is judged late and never counted again. Only a re-send of a forgotten id with
other content and a later ``occurred_at`` could count as a new event.

Next to the ids, an index by day (:func:`day_key`: the day, then the id) lists every
remembered id in the order of its event's day, so the ids that may be forgotten are the
index's first entries. Ids are forgotten by passes over those first entries, a bounded
slice at a time (``IdGate.forget_ids``). A pass starts once the cutoff (the lateness
mark less the horizon) has moved on by ``PASS_STEP`` of the horizon since the last pass
started, and stops at the first entry whose day is not forgettable: each id is read
once to be forgotten, and a pass reads at most one slice more than it forgets.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from models.keyed import Codec

DIGEST_BYTES = 8  # models.events.canonical_digest
DAY_BYTES = 4  # a day's ordinal, big-endian
# a new pass starts when the cutoff has moved on by this share of the horizon
PASS_STEP = 0.5
DAY_KEY_CHARS = 10  # an index key starts with its day, YYYY-MM-DD: all days sort as dates
DAY_KEY_SEPARATOR = "/"


@dataclass(frozen=True)
class SeenId:
    """An accepted event id's digest, and the UTC day its event occurred on. ``day`` is
    None for an id stored by a release that kept no day: a pass gives it the day of
    the ledger's watermark then, which no event accepted before it is later than."""

    digest: bytes
    day: dt.date | None


def _encode(seen: SeenId) -> bytes:
    if seen.day is None:
        return seen.digest
    return seen.digest + seen.day.toordinal().to_bytes(DAY_BYTES, "big")


def _decode(data: bytes) -> SeenId:
    """The digest alone (as the release before the horizon stored it), or with a day."""
    digest, day = data[:DIGEST_BYTES], data[DIGEST_BYTES:]
    return SeenId(digest, dt.date.fromordinal(int.from_bytes(day, "big")) if day else None)


SEEN_ID: Codec[SeenId] = Codec(_encode, _decode)


def forgettable(day: dt.date, cutoff: dt.datetime) -> bool:
    """Whether every instant of UTC ``day`` is before ``cutoff``."""
    return day < cutoff.astimezone(dt.UTC).date()


def day_key(day: dt.date, event_id: str) -> str:
    """The index's key of an id: its day (ISO, so the keys sort by day, years 1 to 9999
    alike), then the id."""
    return f"{day.isoformat()}{DAY_KEY_SEPARATOR}{event_id}"


def split_day_key(key: str) -> tuple[dt.date, str]:
    """The day and the event id of an index key (:func:`day_key`)."""
    return dt.date.fromisoformat(key[:DAY_KEY_CHARS]), key[DAY_KEY_CHARS + 1 :]


# an index entry's value: the key says everything. One byte, not none: an empty value
# must never be read as a tombstone anywhere between the map and the changelog
INDEXED_VALUE = b"\x01"
ID_DAY: Codec[bool] = Codec(lambda _present: INDEXED_VALUE, lambda _data: True)


def pass_due(cutoff: dt.datetime, last: dt.datetime | None, horizon: dt.timedelta) -> bool:
    """Whether a pass with ``cutoff`` should start, the last one having had ``last``."""
    return last is None or cutoff - last >= horizon * PASS_STEP
