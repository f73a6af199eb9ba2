"""The id gate: which events count, judged by their ids and their sources' marks alone.

Before an event is applied to the ledger, it is judged: an id accepted before makes it
a repeat (a DUPLICATE if it says the same, a CONFLICT if not: the first version counts),
an ``occurred_at`` older than the allowed lateness behind the slowest source's mark (or
older than the ids already forgotten) makes it LATE, and anything else is APPLIED: its
id is remembered and its source's mark moves on to it. The gate holds the ids and the
marks; the ledger (models.ledger) holds what the admitted events add up to. A
:class:`models.ledger.Ledger` judges with a gate of its own; a worker split in two runs
gates partitioned by event id upstream of one ledger, which applies what they admitted
(``Ledger.apply_admitted``).

A gate partition sees only the events routed to it, so it judges lateness by the marks
it was told: those of its own events, and those :meth:`IdGate.advance` reports.

Accepted ids are remembered for the dedup horizon (models.dedup), not for ever:
:meth:`IdGate.forget_ids` forgets, a bounded slice per call, the ids whose events lie a
horizon or more behind the slowest source's mark, and every event older than the ids
forgotten is judged late, so none of them counts twice. It finds them in an index by
day (``<prefix>.id_days``, models.dedup.day_key) kept next to the ids, so it reads only
the ids it forgets. On a Kafka-logged table the index costs one more changelog record
per admitted event and one more tombstone per id forgotten (a key of the map's name,
the day and the id, a one-byte value), in the write-ahead records too; a pass
over ``<prefix>.ids`` read and decoded every remembered id each time the cutoff moved on
by half a horizon (two or three reads of each id over its life, most of them finding
nothing to forget). Ids stored before the index (or before ids had a day) are indexed
once, a slice per call, before the index is used (:meth:`IdGate.forget_ids`).

The maps of a gate opened with ``prefix="ledger"`` are the ledger's own (``ledger.ids``,
``ledger.id_days``, ``ledger.forgetting``, ``ledger.marks``, ``ledger.counts``), keys
and codecs unchanged, so a gate loads what a ledger stored. ``ledger.marks`` and
``ledger.counts`` are shared: the gate's keys there are ``source:<name>``,
FORGOTTEN_BEFORE and FORGOTTEN, the ledger's ``watermark`` and ``accepted``.
"""

from __future__ import annotations

import datetime as dt
import enum

from models import dedup
from models.dedup import ID_DAY, SEEN_ID, SeenId, day_key, split_day_key
from models.events import Event
from models.holdable import cannot_hold, check_holdable, digest_of
from models.keyed import COUNT, TEXTS, MemoryMaps, StateMaps
from models.ledger_codecs import INSTANT
from models.policy import MetricPolicy

# in <prefix>.marks: the cutoff of the latest pass that forgets ids; in <prefix>.counts:
# the ids forgotten so far
FORGOTTEN_BEFORE = "ids_forgotten_before"
FORGOTTEN = "ids_forgotten"
# in <prefix>.forgetting: the last index key the pass under way looked at; the last id the
# one-time indexing of ids stored before the index looked at; that indexing is done; and
# the last id a pass of the release before the index looked at (its pass under way)
PASS_CURSOR = "day_cursor"
INDEX_CURSOR = "index_cursor"
INDEXED = "indexed"
SCAN_CURSOR = "cursor"
SOURCE_MARK = "source:"  # in <prefix>.marks, before a source's name: its mark
# in <prefix>.marks: the latest instant of an event the ledger on these maps accepted
WATERMARK = "watermark"


class Outcome(enum.Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"  # the id was accepted before, with the same content
    CONFLICT = "conflict"  # the id was accepted before, with other content: that one counts
    LATE = "late"


class IdGate:
    """Remembered event ids and per-source marks. Pure: time is passed in."""

    def __init__(
        self,
        policy: MetricPolicy,
        sources: tuple[str, ...] = ("",),
        maps: StateMaps | None = None,
        prefix: str = "ledger",
    ) -> None:
        """``sources``: the independent inputs events arrive from, each in its own order.
        Each keeps its own mark, and an event is late only when it is older than the
        allowed lateness behind the slowest of them.

        ``maps``: where the state is kept (in memory if None), in maps named
        ``<prefix>.*``; if they hold a gate's (or a ledger's) state, this gate starts
        from it."""
        self.policy = policy
        self.sources = sources
        maps = MemoryMaps() if maps is None else maps
        # per accepted event_id, the digest of what it said (a re-send with other content
        # is a conflict: models.events.canonical_digest) and its day, for the horizon
        self._ids = maps.open(f"{prefix}.ids", SEEN_ID)
        # the same ids by day: day_key(day, event_id), for forget_ids
        self._days = maps.open(f"{prefix}.id_days", ID_DAY)
        self._forgetting = maps.open(f"{prefix}.forgetting", TEXTS)  # the pass under way
        self._marks = maps.open(f"{prefix}.marks", INSTANT)
        self._counts = maps.open(f"{prefix}.counts", COUNT)
        self._horizon = max(policy.dedup_horizon, policy.lateness)
        self._source_marks: dict[str, dt.datetime] = {
            key.removeprefix(SOURCE_MARK): mark
            for key, mark in self._marks.items()
            if key.startswith(SOURCE_MARK)
        }
        self._lateness_mark: dt.datetime | None = None  # min of the marks, kept up to date
        self._update_lateness_mark()
        # ids of events before this instant may be forgotten: such events are late
        self._forgotten_before: dt.datetime | None = self._marks.get(FORGOTTEN_BEFORE)
        # no id stored yet: every id this gate remembers is indexed, none needs indexing
        # (on maps in memory, this read sorts the ids once, until INDEXED is stored)
        self._indexed = self._forgetting.get(INDEXED) is not None
        self._nothing_to_index = not self._indexed and not self._ids.items_after(None, 1)

    # -- judging ------------------------------------------------------------------

    def admit(self, event: Event, source: str = "") -> Outcome:
        """Judge one validated event from ``source``; if APPLIED, its id is remembered and
        the source's mark moves on to its ``occurred_at``.

        Raises InvalidEventError, leaving the gate exactly as it was, if the ledger
        could not hold the event (models.holdable.check_holdable)."""
        outcome = self.judge(event)
        if outcome is not None:
            return outcome
        digest = check_holdable(event, self.policy)
        self.remember(event, digest, source)
        return Outcome.APPLIED

    def restore(self, event: Event) -> Outcome:
        """Admit an event accepted before (recovery): no lateness check and no mark moved,
        but an event older than the ids forgotten is late, as it may have counted
        already. As :meth:`admit`, an event that cannot be held raises
        InvalidEventError and changes nothing."""
        outcome = self.judge(event, restoring=True)
        if outcome is not None:
            return outcome
        self.remember(event, check_holdable(event, self.policy), None)
        return Outcome.APPLIED

    def judge(self, event: Event, *, restoring: bool = False) -> Outcome | None:
        """DUPLICATE, CONFLICT or LATE for an event the gate would not admit, else None.
        Changes nothing. ``restoring``: judged as :meth:`restore` does.

        An event judged None is admitted by :meth:`remember`, once it is known to be
        holdable (models.holdable.check_holdable gives the digest to remember)."""
        first = self._ids.get(event.event_id)
        if first is not None:
            return self._repeat(event, first.digest)
        try:
            late = self._before_forgotten(event) if restoring else self.is_late(event)
        except TypeError as error:  # an occurred_at without an offset
            raise cannot_hold("occurred_at", error) from error
        return Outcome.LATE if late else None

    def repeat(self, event: Event) -> Outcome | None:
        """DUPLICATE or CONFLICT if the event's id was accepted before, else None.
        Changes nothing; no lateness is judged."""
        first = self._ids.get(event.event_id)
        return None if first is None else self._repeat(event, first.digest)

    def remember(self, event: Event, digest: bytes, source: str | None) -> None:
        """Admit an event :meth:`judge` judged None, whose ``digest`` check_holdable gave:
        its id is remembered, and ``source``'s mark (unless None) moves on to it."""
        day = event.occurred_day
        self._ids.put(event.event_id, SeenId(digest, day))
        self._days.put(day_key(day, event.event_id), True)
        if source is not None:
            self.advance(source, event.occurred_at)

    def _repeat(self, event: Event, first: bytes) -> Outcome:
        """A second event with a known id: the first version counts, this one never."""
        return Outcome.DUPLICATE if digest_of(event) == first else Outcome.CONFLICT

    # -- lateness -------------------------------------------------------------------

    def advance(self, source: str, mark: dt.datetime) -> None:
        """Move ``source``'s mark on to ``mark`` (an instant with an offset), if that is
        later: events of the source up to ``mark`` were seen, here or elsewhere. A mark
        never moves back."""
        if mark.utcoffset() is None:
            raise ValueError(f"a mark needs an offset: {mark.isoformat()}")
        previous = self._source_marks.get(source)
        if previous is not None and mark <= previous:
            return
        self._source_marks[source] = mark
        self._marks.put(f"{SOURCE_MARK}{source}", mark)
        if previous is None or previous == self._lateness_mark:  # the minimum may have moved
            self._update_lateness_mark()

    def _update_lateness_mark(self) -> None:
        marks = [self._source_marks.get(name) for name in self.sources]
        known = [mark for mark in marks if mark is not None]
        self._lateness_mark = min(known) if len(known) == len(marks) else None

    def lateness_mark(self) -> dt.datetime | None:
        """The slowest source's mark; None until every source has been seen."""
        return self._lateness_mark

    def is_late(self, event: Event) -> bool:
        """Older than the allowed lateness behind the slowest source, or older than the
        ids already forgotten (which, with the sources fixed, is never later)."""
        mark = self._lateness_mark
        if mark is not None and event.occurred_at < mark - self.policy.lateness:
            return True
        return self._before_forgotten(event)

    def _before_forgotten(self, event: Event) -> bool:
        floor = self._forgotten_before
        return floor is not None and event.occurred_at < floor

    # -- the dedup horizon ---------------------------------------------------------

    @property
    def dedup_horizon(self) -> dt.timedelta:
        """How long past its event's day, behind the slowest source's mark, an id is
        remembered at least: the policy's, never shorter than the lateness."""
        return self._horizon

    @property
    def forgotten_count(self) -> int:
        """Accepted ids forgotten so far."""
        return self._counts.get(FORGOTTEN) or 0

    @property
    def pass_under_way(self) -> bool:
        """Whether a pass (or the indexing of ids stored before the index) is under way:
        the next :meth:`forget_ids` goes on with it."""
        if not self._indexed and not self._nothing_to_index:
            return True
        return self._forgetting.get(PASS_CURSOR) is not None

    def forget_ids(self, limit: int) -> int:
        """Forget, reading up to ``limit`` entries of the index by day, the ids whose
        event's UTC day ended a horizon or more before the lateness mark; returns how
        many it forgot.

        A pass reads the index in key order (by day) from where the call before stopped
        (across restarts too), and ends at its first entry not forgettable. It starts
        only when the cutoff (the mark less the horizon) has moved on by a share of the
        horizon since the last pass started (models.dedup.PASS_STEP), and its cutoff is
        stored before any id is forgotten: a call between passes reads nothing, and the
        ids are forgotten at the same cutoffs as when passes read every id.

        On maps that hold ids stored before the index, the calls first index them
        (:meth:`_index_ids`), and only then use the index."""
        if limit < 1:
            return 0
        if not self._indexed:
            if not self._nothing_to_index:
                return self._index_ids(limit)
            self._set_indexed()
        cursor = self._forgetting.get(PASS_CURSOR)
        if cursor is None and not self._start_pass():
            return 0
        cutoff = self._forgotten_before
        assert cutoff is not None  # set when the pass started
        seen = self._days.items_after(cursor[0] if cursor else None, limit)
        done = len(seen) < limit
        forgotten = 0
        for key, _present in seen:
            day, event_id = split_day_key(key)
            if not dedup.forgettable(day, cutoff):
                done = True
                break
            self._days.delete(key)
            self._ids.delete(event_id)
            forgotten += 1
        if done:
            self._forgetting.delete(PASS_CURSOR)
        else:
            self._forgetting.put(PASS_CURSOR, (seen[-1][0],))
        self._count_forgotten(forgotten)
        return forgotten

    def _index_ids(self, limit: int) -> int:
        """One slice of the one-time indexing of ids stored before the index: each id
        read gets its index entry (an id stored without a day is first given the day of
        the ledger's watermark, else of the latest source's mark; with neither known,
        the slice stops and waits for one), and an id the stored cutoff lets go is
        forgotten instead (a pass of the release before may have been under way: its
        cutoff is the stored one). Returns how many it forgot.

        Goes on from the id the slice before stopped at, across restarts too; no pass
        starts until it is done, so the cutoff does not move meanwhile. An id remembered
        meanwhile is indexed by :meth:`remember`."""
        cursor = self._forgetting.get(INDEX_CURSOR)
        seen = self._ids.items_after(cursor[0] if cursor else None, limit)
        cutoff = self._forgotten_before
        last, forgotten, waiting = None, 0, False
        for event_id, entry in seen:
            day = entry.day if entry.day is not None else self._undated_day()
            if day is None:
                waiting = True
                break
            if cutoff is not None and dedup.forgettable(day, cutoff):
                # remembered before the index (one remembered since is not before the
                # cutoff), so it has no entry in it
                self._ids.delete(event_id)
                forgotten += 1
            else:
                if entry.day is None:
                    self._ids.put(event_id, SeenId(entry.digest, day))
                self._days.put(day_key(day, event_id), True)
            last = event_id
        self._count_forgotten(forgotten)
        if not waiting and len(seen) < limit:
            self._forgetting.delete(INDEX_CURSOR)
            self._forgetting.delete(SCAN_CURSOR)  # a pass of the release before: done too
            self._set_indexed()
        elif last is not None:
            self._forgetting.put(INDEX_CURSOR, (last,))
        return forgotten

    def _set_indexed(self) -> None:
        self._forgetting.put(INDEXED, ())
        self._indexed = True

    def _count_forgotten(self, forgotten: int) -> None:
        if forgotten:
            self._counts.put(FORGOTTEN, self.forgotten_count + forgotten)

    def _undated_day(self) -> dt.date | None:
        """The day for an id stored without one: no event accepted before it is later.
        None while no mark is known."""
        latest = self._marks.get(WATERMARK)
        if latest is None and self._source_marks:
            latest = max(self._source_marks.values())
        return None if latest is None else latest.astimezone(dt.UTC).date()

    def _start_pass(self) -> bool:
        """Start a pass if one is due: its cutoff is stored before any id is forgotten."""
        mark = self._lateness_mark
        if mark is None:
            return False
        try:
            cutoff = mark - self._horizon
        except OverflowError:  # a mark within the horizon of the earliest instant
            return False
        if not dedup.pass_due(cutoff, self._forgotten_before, self._horizon):
            return False
        self._forgotten_before = cutoff
        self._marks.put(FORGOTTEN_BEFORE, cutoff)
        self._forgetting.put(PASS_CURSOR, ())
        return True
