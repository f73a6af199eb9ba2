"""The ledger's owner on this worker: loads it, feeds it batches, makes publications.

No Faust here: the agents call this, so it is tested without a broker.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from models.band import Band, next_band
from models.entities import Emitted
from models.errors import InvalidEventError
from models.events import parse_canonical_event
from models.keyed import StateMaps
from models.ledger import Ledger
from models.policy import MetricPolicy
from models.publication import BandChange, Publication
from models.series import compute_points
from models.state import StateDelta
from streams.pipeline.outcomes import BatchResult, decide_line, unexpected

log = logging.getLogger(__name__)
# contracts read per page of a full state: each page holds the ledger's lock, and each
# contract is decoded from the table (about 35 us in process: ~18 ms a page)
STATE_PAGE_CONTRACTS = 500


@dataclass(frozen=True)
class RebuildReject:
    """A logged event the ledger cannot hold, skipped when the log was read."""

    batch: int  # position of its logged batch in the order given
    line: bytes
    error: InvalidEventError


@dataclass
class FullState:
    """A full state delta whose contracts are read a page at a time, from ``ledger``."""

    ledger: Ledger
    state: StateDelta
    after: str | None = None  # the last contract id read


class LedgerOwner:
    def __init__(
        self,
        policy: MetricPolicy,
        clock_mode: Literal["wall", "event"],
        band_window: str,
        publish_share: float | None = None,
        sources: tuple[str, ...] = ("",),
        state_page_contracts: int = STATE_PAGE_CONTRACTS,
    ) -> None:
        """``publish_share``: the most of the worker's time computing publications may take
        (a large book makes them slow, and they run on the agents' event loop).
        ``state_page_contracts``: contracts read per page of a full state."""
        self.policy = policy
        self.sources = sources
        self.clock_mode = clock_mode
        self.band_window = band_window
        self.ledger: Ledger | None = None
        self.band: Band | None = None
        # a band change no publication has delivered to every sink yet
        self.unsent_change: BandChange | None = None
        self.dirty = False
        self.arrivals_seconds: list[float] = []
        self.needs_full_state = True
        self._last_day: dt.date | None = None
        self.publish_share = publish_share
        self._last_compute_seconds = 0.0
        self._last_compute_cpu_seconds = 0.0
        self._last_compute_end = -math.inf
        self._overflow_reported: set[str] = set()
        self.state_page_contracts = state_page_contracts
        self._full_state: FullState | None = None  # the last publication's, while read

    @property
    def ready(self) -> bool:
        return self.ledger is not None

    def drop(self) -> None:
        """This worker lost the ledger partition."""
        self.ledger = None
        self.band = None
        self.arrivals_seconds.clear()

    def load(self, maps: StateMaps) -> Ledger:
        """The ledger whose state ``maps`` hold; changes nothing here, so it may run on a
        thread while the loop goes on."""
        return Ledger(self.policy, self.sources, maps)

    def restore_log(
        self, ledger: Ledger, logged_batches: Iterable[bytes], first_batch: int = 0
    ) -> list[RebuildReject]:
        """Apply events logged before (NDJSON batches, as the ledger-log table of earlier
        versions kept them) with no lateness check: each one already accepted is a
        duplicate. A logged event the ledger cannot hold (logged by an older version,
        before the contract bounded it) is skipped and returned."""
        rejects: list[RebuildReject] = []
        for index, batch in enumerate(logged_batches, start=first_batch):
            for line in batch.splitlines():
                if not line.strip():
                    continue
                try:
                    ledger.restore(parse_canonical_event(line))
                except InvalidEventError as error:
                    rejects.append(RebuildReject(index, line, error))
                except Exception as error:  # anything else: skipped all the same
                    log.exception("restoring a logged event failed")
                    rejects.append(RebuildReject(index, line, unexpected(error)))
        return rejects

    def install(self, ledger: Ledger, band: Band | None = None) -> int:
        """Take ``ledger`` as this worker's ledger. ``band`` is the last band delivered
        before, so a change across a restart or a hand-over is still an alert."""
        self.band = band
        self.ledger = ledger
        self.dirty = True
        self.needs_full_state = True
        return ledger.accepted_count

    def apply_batch(
        self, values: list[bytes], source: str = "", into: BatchResult | None = None
    ) -> BatchResult:
        """Apply canonical events read from one input ``source`` (partition)."""
        assert self.ledger is not None, "install() first"
        ledger = self.ledger
        result = BatchResult() if into is None else into
        for value in values:
            decide_line(value, lambda event: ledger.apply(event, source), result)
        if result.accepted:
            self.dirty = True
        return result

    def apply_admitted(self, values: list[bytes], into: BatchResult) -> None:
        """Apply canonical events the id gate admitted (no dedup, no lateness here)."""
        assert self.ledger is not None, "install() first"
        for value in values:
            decide_line(value, self.ledger.apply_admitted, into)
        if into.accepted:
            self.dirty = True

    def apply_changes(self, changes: Emitted) -> None:
        """Add what entity partitions applied (models.ledger.Ledger.apply_changes)."""
        assert self.ledger is not None, "install() first"
        self.ledger.apply_changes(changes)
        if changes:
            self.dirty = True

    def forget_ids(self, limit: int) -> int:
        """Forget the event ids past the dedup horizon, looking at up to ``limit`` of them
        (models.ledger.Ledger.forget_ids); returns how many were forgotten."""
        return 0 if self.ledger is None else self.ledger.forget_ids(limit)

    def new_overflowed_channels(self) -> list[str]:
        """Channels newly counted under the overflow label, each once per process."""
        if self.ledger is None:
            return []
        fresh = []
        for channel in self.ledger.take_overflowed_channels():
            if channel not in self._overflow_reported:
                self._overflow_reported.add(channel)
                fresh.append(channel)
        return fresh

    def clock(self, now: dt.datetime) -> dt.datetime:
        """The metrics clock: the wall clock in live mode, never ahead of it (an event
        dated ahead counts on its own day, once that day comes); the watermark in event
        mode."""
        assert self.ledger is not None
        if self.clock_mode == "event":
            return self.ledger.watermark or now
        return now

    def publication(self, now: dt.datetime) -> Publication | None:
        """Points for the current clock, if anything changed since the last one."""
        if self.ledger is None:
            return None
        clock = self.clock(now)
        day = clock.astimezone(dt.UTC).date()
        if not self.dirty and day == self._last_day:
            return None
        if self.publish_share is not None:
            rest_seconds = self._last_compute_seconds * (1 / self.publish_share - 1)
            if time.monotonic() - self._last_compute_end < rest_seconds:
                return None
        started, cpu_started = time.monotonic(), time.thread_time()
        self.ledger.prune(day)
        points = compute_points(self.ledger, day)
        band_value = next(
            (
                p.value
                for p in points
                if p.metric == "marketing_acv" and p.window == self.band_window
            ),
            None,
        )
        band = next_band(self.band, band_value, self.policy.bands)
        change = None
        if self.band is not None and band is not None and band != self.band:
            assert band_value is not None
            change = BandChange(self.band, band, band_value, self.band_window, clock)
            log.warning("marketing-lead ACV band %s -> %s (%s)", self.band, band, band_value)
        self.band = band
        change = self._merge_unsent(change)
        self.dirty = False
        self._last_day = day
        state = self._take_state()
        self._last_compute_end = time.monotonic()
        self._last_compute_seconds = self._last_compute_end - started
        self._last_compute_cpu_seconds = time.thread_time() - cpu_started
        return Publication(tuple(points), clock, self.ledger.watermark, band, change, state)

    def _take_state(self) -> StateDelta:
        """The state delta; a full one holds the first page of contracts, and
        :meth:`read_state_page` reads the others."""
        assert self.ledger is not None
        self._full_state = None
        if not self.needs_full_state:
            return self.ledger.take_delta()
        self.needs_full_state = False
        full = FullState(self.ledger, self.ledger.take_delta(full=True, contracts=False))
        self._full_state = full
        self._read_page(full)
        return full.state

    @property
    def state_incomplete(self) -> bool:
        """The last publication's full state has contracts left to read: it must not go
        out before :meth:`read_state_page` has read them all."""
        return self._full_state is not None

    def read_state_page(self) -> bool:
        """Read the next page of contracts into the last publication's full state (the
        caller lets go of the ledger between pages: a contract changed meanwhile is in
        the next delta). False if the ledger it was taken from is gone: that
        publication must not go out, and the next one is made in full."""
        full = self._full_state
        assert full is not None, "no full state is being read"
        if full.ledger is not self.ledger:
            self._full_state = None
            self.dirty = self.needs_full_state = True
            return False
        started, cpu_started = time.monotonic(), time.thread_time()
        self._read_page(full)
        self._last_compute_end = time.monotonic()
        self._last_compute_seconds += self._last_compute_end - started
        self._last_compute_cpu_seconds += time.thread_time() - cpu_started
        return True

    def _read_page(self, full: FullState) -> None:
        page = full.ledger.contract_page(full.after, self.state_page_contracts)
        for contract in page:
            full.state.contracts[contract.contract_id] = contract
        if len(page) < self.state_page_contracts:
            self._full_state = None
        else:
            full.after = page[-1].contract_id

    @property
    def last_compute_seconds(self) -> float:
        """The last publication's wall time on its thread (no wait for the ledger, but
        every wait for the interpreter lock while the loop runs meanwhile)."""
        return self._last_compute_seconds

    @property
    def last_compute_cpu_seconds(self) -> float:
        """The CPU time of the last publication's own thread (time.thread_time): the
        work itself, with no wait for the lock or the CPU; garbage collections that ran
        on that thread are in it."""
        return self._last_compute_cpu_seconds

    def _merge_unsent(self, change: BandChange | None) -> BandChange | None:
        """A change not yet delivered is carried on; a newer one extends it."""
        unsent = self.unsent_change
        if unsent is not None and change is not None:
            merged = BandChange(unsent.previous, change.current, change.value, change.window,
                                change.clock)  # fmt: skip
            change = None if merged.previous == merged.current else merged
        elif unsent is not None:
            change = unsent
        self.unsent_change = change
        return change

    def published(self) -> None:
        """Every sink took the last publication: its band change is delivered."""
        self.unsent_change = None

    def publish_failed(self) -> None:
        """A sink missed this publication: publish again, and the whole state next time."""
        self.dirty = True
        self.needs_full_state = True
        self._full_state = None
