"""The contract book as an incrementally kept timeline: publishing costs no scan.

:class:`BookTimeline` answers, for any as-of day, exactly what
:func:`models.book.summarize` answers from a scan of every contract. It keeps
day-indexed sums (models.day_sums: amounts per day and sums per block of days, so an
update costs two entries and a range sum adds up blocks and one block's days) of:

- ARR and active-contract changes: ``+`` on a contract's start day, ``-`` on its end;
- ARR started (new, expansion) by start day, and ARR lost to churn by end day;
- active-account changes: per account, the union of its contracts' active spans;
- churned-account changes: per account, the as-of days on which it counts as churned
  in the churn window (active on the window's first day, with no active contract on
  its last, and a churned contract ending in it), as spans of days.

Contracts and churns are kept per account, so a change recomputes only the account it
touches: a churn without a ``contract_id`` ends every contract of its account, and one
with a ``contract_id`` ends that contract, whichever account it is booked under.

Everything that grows with contracts and accounts, the sums' amounts per day included,
lives in keyed maps (models.keyed) named ``timeline.*``, so it can be kept on disk.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from operator import itemgetter
from typing import TypeVar

from models.book import BookedContract, BookEntry, BookSummary, Churn
from models.keyed import MemoryMaps, StateMaps
from models.timeline_codecs import ACCOUNT, DAY, ENTRY, NO_ACCOUNT, AccountBook, Span
from models.timeline_sums import SumChanges, SumDay, TimelineSums
from models.windows import Window

T = TypeVar("T", str, dt.date)
_EntryDays = tuple[int, int, bool]  # a book entry's start, end (ordinals) and churned

CHURN_WINDOW_DAYS = 365


# -- spans of days ------------------------------------------------------------------


def _merged(spans: list[Span]) -> list[Span]:
    """Disjoint, sorted spans covering the same days (``spans`` is sorted in place)."""
    spans.sort()
    found: list[Span] = []
    for first, end in spans:
        if first >= end:
            continue
        if found and first <= found[-1][1]:
            if end > found[-1][1]:
                found[-1] = (found[-1][0], end)
        else:
            found.append((first, end))
    return found


def _intersection(a: list[Span], b: list[Span]) -> list[Span]:
    """Days in both (each argument disjoint and sorted)."""
    found: list[Span] = []
    i = j = 0
    while i < len(a) and j < len(b):
        first, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if first < end:
            found.append((first, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return found


def _difference(a: list[Span], b: list[Span]) -> list[Span]:
    """Days in ``a`` and not in ``b`` (each disjoint and sorted)."""
    found: list[Span] = []
    j = 0
    for first, end in a:
        while j < len(b) and b[j][1] <= first:
            j += 1
        k = j
        while k < len(b) and b[k][0] < end:
            if b[k][0] > first:
                found.append((first, b[k][0]))
            first = max(first, b[k][1])
            k += 1
        if first < end:
            found.append((first, end))
    return found


def _shifted(spans: list[Span], days: int) -> list[Span]:
    return [(first + days, end + days) for first, end in spans]


# -- sorted tuples ------------------------------------------------------------------


def _inserted(values: tuple[T, ...], value: T) -> tuple[T, ...]:
    """``values`` with ``value`` in its sorted place (the same tuple if it is there)."""
    index = bisect.bisect_left(values, value)
    if index < len(values) and values[index] == value:
        return values
    found = list(values)
    found.insert(index, value)
    return tuple(found)


def _without(values: tuple[T, ...], value: T) -> tuple[T, ...]:
    index = bisect.bisect_left(values, value)
    if index < len(values) and values[index] == value:
        found = list(values)
        del found[index]
        return tuple(found)
    return values


class BookTimeline:
    """The book's day-indexed sums, kept up to date as contracts and churns change.

    ``maps`` holds the state: per contract its book entry and its earliest own churn,
    per account an :class:`AccountBook`, and each sum's amount per day. A timeline made
    on maps that hold a timeline's state (kept with the same ``churn_window_days``)
    goes on from that state."""

    def __init__(
        self,
        churn_window_days: int = CHURN_WINDOW_DAYS,
        maps: StateMaps | None = None,
        sums: SumChanges | None = None,
    ) -> None:
        if churn_window_days < 1:
            raise ValueError("churn_window_days must be at least 1")
        self.churn_window_days = churn_window_days
        maps = MemoryMaps() if maps is None else maps
        self._entries = maps.open("timeline.entry", ENTRY)  # contract id -> its entry
        self._contract_churns = maps.open("timeline.contract_churn", DAY)  # the earliest
        self._accounts = maps.open("timeline.account", ACCOUNT)
        # where the changes go: the sums themselves, or a collector that sends them on
        self._sums: TimelineSums | SumChanges = (
            TimelineSums(churn_window_days, maps) if sums is None else sums
        )

    # -- changes ------------------------------------------------------------------

    def put_contract(self, contract: BookedContract) -> None:
        """Add a contract, or replace the one with its ``contract_id``."""
        contract_id, account_id = contract.contract_id, contract.account_id
        old = self._entries.get(contract_id)
        if old is not None and old.contract == contract:
            return  # its entry is up to date with every churn added
        if old is not None:
            self._count_entry(old, -1)
            if old.contract.account_id != account_id:
                self._leave_account(old.contract)
        stored = self._accounts.get(account_id)
        account = stored or NO_ACCOUNT
        ids = _inserted(account.contract_ids, contract_id)
        if ids is not account.contract_ids:
            account = AccountBook(ids, account.churn_days, account.active, account.churned)
        self._enter(contract, account.churn_days)
        self._refresh_account(account_id, stored, account)

    def remove_contract(self, contract_id: str, account_id: str | None = None) -> None:
        """Take a contract off the book; with ``account_id``, only if it is booked under
        that account (a later version may have moved it to another already)."""
        old = self._entries.get(contract_id)
        if old is None or account_id not in (None, old.contract.account_id):
            return
        self._count_entry(old, -1)
        self._entries.delete(contract_id)
        self._leave_account(old.contract)

    def add_churn(self, churn: Churn) -> None:
        """A churn: of one contract (any account), or of every contract of its account."""
        day = churn.effective_date
        if churn.contract_id is None:
            stored = self._accounts.get(churn.account_id)
            account = stored or NO_ACCOUNT
            churn_days = _inserted(account.churn_days, day)
            if churn_days is account.churn_days:
                return  # a churn on that day is already applied
            account = AccountBook(account.contract_ids, churn_days, account.active, account.churned)
            for contract_id in account.contract_ids:
                self._reenter(contract_id, churn_days)
            self._refresh_account(churn.account_id, stored, account)
            return
        earliest = self._contract_churns.get(churn.contract_id)
        if earliest is not None and earliest <= day:
            return
        self._contract_churns.put(churn.contract_id, day)
        entry = self._entries.get(churn.contract_id)
        if entry is not None:
            account_id = entry.contract.account_id
            stored = self._accounts.get(account_id)
            assert stored is not None  # an entry's account lists it
            if self._reenter(churn.contract_id, stored.churn_days):
                self._refresh_account(account_id, stored, stored)

    def add_changes(self, changes: Mapping[SumDay, Decimal | int]) -> None:
        """Add changes another timeline counted (one that holds part of the book and
        sends its changes on: models.entities)."""
        for (name, ordinal), change in changes.items():
            self._sums.add(name, ordinal, change)

    # -- queries --------------------------------------------------------------------

    def end_date(self, contract: BookedContract) -> dt.date:
        """As :func:`models.book.end_date` over the churns added: term end or earliest churn."""
        account = self._accounts.get(contract.account_id) or NO_ACCOUNT
        return self._end_date(contract, account.churn_days)

    def entries(self) -> list[BookEntry]:
        """The book, by contract id: equal to ``build_book`` over the same facts."""
        return [entry for _, entry in sorted(self._entries.items(), key=itemgetter(0))]

    def summary(self, as_of: dt.date, windows: list[Window], churn_window: Window) -> BookSummary:
        """Equal to :func:`models.book.summarize` over :meth:`entries` (a timeline that
        sends its changes on to a :class:`SumChanges` has no sums to read).

        ``churn_window`` must end on ``as_of`` and span ``churn_window_days`` days."""
        if not isinstance(self._sums, TimelineSums):
            raise TypeError("this timeline sends its changes on: read them where they meet")
        return self._sums.summary(as_of, windows, churn_window)

    @property
    def size(self) -> int:
        """Entries held over every day-indexed sum: follows live days, not changes made."""
        return self._sums.size if isinstance(self._sums, TimelineSums) else 0

    # -- one contract's entry ---------------------------------------------------------

    def _end_date(self, contract: BookedContract, churn_days: tuple[dt.date, ...]) -> dt.date:
        """Its term end, or the earliest churn of it or (from its start) of its account."""
        start, end = contract.start_date, contract.term_end
        own = self._contract_churns.get(contract.contract_id)
        if own is not None and own < end:
            end = max(start, own)
        index = bisect.bisect_left(churn_days, start)
        if index < len(churn_days) and churn_days[index] < end:
            end = churn_days[index]
        return end

    def _enter(self, contract: BookedContract, churn_days: tuple[dt.date, ...]) -> None:
        entry = BookEntry(contract, self._end_date(contract, churn_days))
        self._entries.put(contract.contract_id, entry)
        self._count_entry(entry, +1)

    def _reenter(self, contract_id: str, churn_days: tuple[dt.date, ...]) -> bool:
        """Count a contract again with the churns now known: whether its end moved."""
        old = self._entries.get(contract_id)
        assert old is not None  # an account lists only contracts with an entry
        if self._end_date(old.contract, churn_days) == old.end_date:
            return False
        self._count_entry(old, -1)
        self._enter(old.contract, churn_days)
        return True

    def _count_entry(self, entry: BookEntry, sign: int) -> None:
        contract = entry.contract
        start, end = contract.start_date.toordinal(), entry.end_date.toordinal()
        if sign > 0:
            gained, lost = contract.arr, contract.arr.copy_negate()
        else:
            gained, lost = contract.arr.copy_negate(), contract.arr
        sums = self._sums
        if start < end:
            sums.add("arr", start, gained)
            sums.add("arr", end, lost)
            sums.add("active_contracts", start, sign)
            sums.add("active_contracts", end, -sign)
            if entry.churned:
                sums.add("churned", end, gained)
        if contract.kind == "new":
            sums.add("new", start, gained)
        elif contract.kind == "expansion":
            sums.add("expansion", start, gained)

    # -- one account's spans ----------------------------------------------------------

    def _leave_account(self, contract: BookedContract) -> None:
        """Take a contract off its account's list (its entry is already uncounted)."""
        stored = self._accounts.get(contract.account_id)
        assert stored is not None  # an entry's account lists it
        ids = _without(stored.contract_ids, contract.contract_id)
        account = AccountBook(ids, stored.churn_days, stored.active, stored.churned)
        self._refresh_account(contract.account_id, stored, account)

    def _refresh_account(
        self, account_id: str, stored: AccountBook | None, account: AccountBook
    ) -> None:
        """Count an account's spans again from its contracts' entries, and keep it.

        ``stored``: what its map held; ``account``: that with its contracts and churn
        days changed, and still the spans that are counted in the sums."""
        active: tuple[Span, ...] = ()
        churned: tuple[Span, ...] = ()
        if account.contract_ids:
            days = [self._entry_days(contract_id) for contract_id in account.contract_ids]
            found = self._account_days(days)
            active, churned = tuple(found[0]), tuple(found[1])
        if active != account.active or churned != account.churned:
            self._count_spans("active_accounts", account.active, active)
            self._count_spans("churned_accounts", account.churned, churned)
            account = AccountBook(account.contract_ids, account.churn_days, active, churned)
        if account == stored:
            return
        if account.empty:
            self._accounts.delete(account_id)
        else:
            self._accounts.put(account_id, account)

    def _entry_days(self, contract_id: str) -> _EntryDays:
        entry = self._entries.get(contract_id)
        assert entry is not None  # an account lists only contracts with an entry
        start, end = entry.contract.start_date.toordinal(), entry.end_date.toordinal()
        return start, end, entry.churned

    def _account_days(self, days: list[_EntryDays]) -> tuple[list[Span], list[Span]]:
        """The days an account is active, and the as-of days it counts as churned.

        For an as-of day ``t`` the churn window runs from ``t - (n - 1)`` to ``t``: the
        account counts if it is active on ``t - (n - 1)`` (its active days shifted by
        ``n - 1``), is not active on ``t``, and a churned contract of it ended in the
        window (``t`` within ``n`` days from that end)."""
        reach = self.churn_window_days
        if len(days) == 1:  # most accounts: no merging
            start, end, churned = days[0]
            active = [(start, end)] if start < end else []
            churn_ends = [(end, end + reach)] if churned else []
        else:
            active = _merged([(start, end) for start, end, _ in days])
            churn_ends = _merged([(end, end + reach) for _, end, churned in days if churned])
        if not churn_ends:
            return active, []
        at_start = _shifted(active, reach - 1)
        return active, _intersection(_difference(at_start, active), churn_ends)

    def _count_spans(self, name: str, old: tuple[Span, ...], new: tuple[Span, ...]) -> None:
        """Count an account on the days of ``new`` instead of ``old``: a day where the
        change nets to zero (a span's unchanged start) is not touched."""
        changes: dict[int, int] = {}
        for spans, sign in ((old, -1), (new, +1)):
            for first, end in spans:
                changes[first] = changes.get(first, 0) + sign
                changes[end] = changes.get(end, 0) - sign
        for day, change in changes.items():
            if change:
                self._sums.add(name, day, change)
