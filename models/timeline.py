"""The contract book as an incrementally kept timeline: publishing costs no scan.

:class:`BookTimeline` answers, for any as-of day, exactly what
:func:`models.book.summarize` answers from a scan of every contract. It keeps
day-indexed sums (a Fenwick tree over day numbers, so an update and a range sum each
take ``O(log days)``) of:

- ARR and active-contract changes: ``+`` on a contract's start day, ``-`` on its end;
- ARR started (new, expansion) by start day, and ARR lost to churn by end day;
- active-account changes: per account, the union of its contracts' active spans;
- churned-account changes: per account, the as-of days on which it counts as churned
  in the churn window (active on the window's first day, with no active contract on
  its last, and a churned contract ending in it), as spans of days.

Contracts and churns are kept per account, so a change recomputes only the account it
touches: a churn without a ``contract_id`` ends every contract of its account, and one
with a ``contract_id`` ends that contract, whichever account it is booked under.
"""

from __future__ import annotations

import bisect
import datetime as dt
import operator
from collections.abc import Callable
from decimal import Decimal
from typing import Generic, TypeVar

from models.book import ArrMovements, BookedContract, BookEntry, BookSummary, Churn
from models.money import MONEY_CONTEXT
from models.windows import Window

T = TypeVar("T", int, Decimal)
Span = tuple[int, int]  # day ordinals, first included, last excluded
_EntryDays = tuple[int, int, bool]  # a book entry's start, end (ordinals) and churned

CHURN_WINDOW_DAYS = 365
# Day numbers the timeline can hold: 2**18 days from 1800-01-01 (to 2517), wide around
# the event contract's dates (models.limits) and the churn window shifted past them.
_FIRST_ORDINAL = dt.date(1800, 1, 1).toordinal()
_SIZE_DAYS = 1 << 18


def _money_add(a: Decimal, b: Decimal) -> Decimal:
    return MONEY_CONTEXT.add(a, b)


def _money_subtract(a: Decimal, b: Decimal) -> Decimal:
    return MONEY_CONTEXT.subtract(a, b)


class DaySums(Generic[T]):
    """Amounts on days, summed over any range of days.

    A Fenwick tree over day numbers, stored sparsely: a node that sums to zero is
    dropped, so the size follows the days that carry an amount, not the updates made.
    Changes are netted per day and folded into the tree at the next read, so a burst
    of changes on a few days (today's contracts) costs a few tree updates.
    """

    def __init__(self, zero: T, plus: Callable[[T, T], T], minus: Callable[[T, T], T]) -> None:
        self._zero: T = zero
        self._plus: Callable[[T, T], T] = plus
        self._minus: Callable[[T, T], T] = minus
        self._nodes: dict[int, T] = {}
        self._pending: dict[int, T] = {}  # per tree position, the change not yet folded in

    @staticmethod
    def _position(ordinal: int) -> int:
        return ordinal - _FIRST_ORDINAL + 1

    def add(self, ordinal: int, amount: T) -> None:
        """Add ``amount`` on the day with this ordinal (``date.toordinal()``)."""
        position = ordinal - _FIRST_ORDINAL + 1
        if not 1 <= position <= _SIZE_DAYS:
            first = dt.date.fromordinal(_FIRST_ORDINAL)
            last = dt.date.fromordinal(_FIRST_ORDINAL + _SIZE_DAYS - 1)
            raise ValueError(f"a timeline day must be between {first} and {last}")
        pending = self._pending
        pending[position] = self._plus(pending.get(position, self._zero), amount)

    def _fold(self) -> None:
        nodes, plus, zero = self._nodes, self._plus, self._zero
        for start, amount in self._pending.items():
            if not amount:
                continue
            position = start
            while position <= _SIZE_DAYS:
                total = plus(nodes.get(position, zero), amount)
                if total:
                    nodes[position] = total
                else:
                    del nodes[position]
                position += position & -position
        self._pending.clear()

    def through(self, ordinal: int) -> T:
        """The sum of the amounts on every day up to and including this one."""
        if self._pending:
            self._fold()
        position = min(self._position(ordinal), _SIZE_DAYS)
        total = self._zero
        nodes = self._nodes
        while position > 0:
            node = nodes.get(position)
            if node is not None:
                total = self._plus(total, node)
            position -= position & -position
        return total

    def between(self, first: int, last: int) -> T:
        """The sum over the days from ``first`` to ``last``, both included."""
        return self._minus(self.through(last), self.through(first - 1))

    @property
    def node_count(self) -> int:
        if self._pending:
            self._fold()
        return len(self._nodes)


def _money_sums() -> DaySums[Decimal]:
    return DaySums(Decimal(0), _money_add, _money_subtract)


def _count_sums() -> DaySums[int]:
    return DaySums(0, operator.add, operator.sub)


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


class BookTimeline:
    """The book's day-indexed sums, kept up to date as contracts and churns change."""

    def __init__(self, churn_window_days: int = CHURN_WINDOW_DAYS) -> None:
        if churn_window_days < 1:
            raise ValueError("churn_window_days must be at least 1")
        self.churn_window_days = churn_window_days
        self._contracts: dict[str, BookedContract] = {}
        self._entries: dict[str, BookEntry] = {}
        self._days: dict[str, _EntryDays] = {}  # per contract id, from its entry
        self._by_account: dict[str, set[str]] = {}  # account -> its contract ids
        self._account_churns: dict[str, list[dt.date]] = {}  # sorted; no contract_id
        self._contract_churns: dict[str, dt.date] = {}  # the earliest, per contract_id
        # per account: the days it is active, and the as-of days it counts as churned
        self._account_spans: dict[str, tuple[list[Span], list[Span]]] = {}
        self._arr = _money_sums()
        self._active_contracts = _count_sums()
        self._new = _money_sums()
        self._expansion = _money_sums()
        self._churned = _money_sums()
        self._active_accounts = _count_sums()
        self._churned_accounts = _count_sums()

    # -- changes ------------------------------------------------------------------

    def put_contract(self, contract: BookedContract) -> None:
        """Add a contract, or replace the one with its ``contract_id``."""
        contract_id = contract.contract_id
        old = self._contracts.get(contract_id)
        if old is not None:
            self._drop(old)
        self._contracts[contract_id] = contract
        self._by_account.setdefault(contract.account_id, set()).add(contract_id)
        self._enter(contract)
        if old is not None and old.account_id != contract.account_id:
            self._refresh_account(old.account_id)
        self._refresh_account(contract.account_id)

    def remove_contract(self, contract_id: str) -> None:
        old = self._contracts.get(contract_id)
        if old is None:
            return
        self._drop(old)
        self._refresh_account(old.account_id)

    def add_churn(self, churn: Churn) -> None:
        """A churn: of one contract (any account), or of every contract of its account."""
        day = churn.effective_date
        if churn.contract_id is None:
            bisect.insort(self._account_churns.setdefault(churn.account_id, []), day)
            affected = sorted(self._by_account.get(churn.account_id, ()))
            for contract_id in affected:
                self._reenter(self._contracts[contract_id])
            if affected:
                self._refresh_account(churn.account_id)
            return
        earliest = self._contract_churns.get(churn.contract_id)
        if earliest is not None and earliest <= day:
            return
        self._contract_churns[churn.contract_id] = day
        contract = self._contracts.get(churn.contract_id)
        if contract is not None:
            self._reenter(contract)
            self._refresh_account(contract.account_id)

    # -- queries --------------------------------------------------------------------

    def end_date(self, contract: BookedContract) -> dt.date:
        """As :func:`models.book.end_date` over the churns added: term end or earliest churn."""
        start, end = contract.start_date, contract.term_end
        own = self._contract_churns.get(contract.contract_id)
        if own is not None and own < end:
            end = max(start, own)
        account_days = self._account_churns.get(contract.account_id, [])
        index = bisect.bisect_left(account_days, start)
        if index < len(account_days) and account_days[index] < end:
            end = account_days[index]
        return end

    def entries(self) -> list[BookEntry]:
        """The book, by contract id: equal to ``build_book`` over the same facts."""
        return [self._entries[contract_id] for contract_id in sorted(self._entries)]

    def summary(self, as_of: dt.date, windows: list[Window], churn_window: Window) -> BookSummary:
        """Equal to :func:`models.book.summarize` over :meth:`entries`.

        ``churn_window`` must end on ``as_of`` and span ``churn_window_days`` days."""
        span_days = (churn_window.last_day - churn_window.first_day).days + 1
        if churn_window.last_day != as_of or span_days != self.churn_window_days:
            raise ValueError(
                f"the churn window must be the {self.churn_window_days} days ending on {as_of}"
            )
        day = as_of.toordinal()
        totals: dict[str, tuple[Decimal, Decimal, Decimal]] = {}
        for window in windows:
            first, last = window.first_day.toordinal(), window.last_day.toordinal()
            moves = (
                self._new.between(first, last),
                self._expansion.between(first, last),
                self._churned.between(first, last),
            )
            seen = totals.get(window.name)  # a repeated name adds up, as in summarize
            if seen is not None:
                moves = (
                    _money_add(seen[0], moves[0]),
                    _money_add(seen[1], moves[1]),
                    _money_add(seen[2], moves[2]),
                )
            totals[window.name] = moves
        return BookSummary(
            arr=self._arr.through(day),
            active_contracts=self._active_contracts.through(day),
            active_accounts=self._active_accounts.through(day),
            movements={name: ArrMovements(*moves) for name, moves in totals.items()},
            churned_accounts=self._churned_accounts.through(day),
            accounts_at_start=self._active_accounts.through(churn_window.first_day.toordinal()),
        )

    @property
    def size(self) -> int:
        """Nodes held over every day-indexed sum: follows live days, not changes made."""
        sums = (
            self._arr, self._active_contracts, self._new, self._expansion, self._churned,
            self._active_accounts, self._churned_accounts,
        )  # fmt: skip
        return sum(day_sums.node_count for day_sums in sums)

    # -- one contract's entry ---------------------------------------------------------

    def _drop(self, contract: BookedContract) -> None:
        """Take a contract out (its account's spans are refreshed by the caller)."""
        contract_id = contract.contract_id
        self._count_entry(self._entries.pop(contract_id), -1)
        del self._days[contract_id]
        del self._contracts[contract_id]
        ids = self._by_account[contract.account_id]
        ids.discard(contract_id)
        if not ids:
            del self._by_account[contract.account_id]

    def _enter(self, contract: BookedContract) -> None:
        entry = BookEntry(contract, self.end_date(contract))
        self._entries[contract.contract_id] = entry
        self._count_entry(entry, +1)

    def _reenter(self, contract: BookedContract) -> None:
        self._count_entry(self._entries[contract.contract_id], -1)
        self._enter(contract)

    def _count_entry(self, entry: BookEntry, sign: int) -> None:
        contract = entry.contract
        start, end = contract.start_date.toordinal(), entry.end_date.toordinal()
        if sign > 0:
            self._days[contract.contract_id] = (start, end, entry.churned)
            gained, lost = contract.arr, contract.arr.copy_negate()
        else:
            gained, lost = contract.arr.copy_negate(), contract.arr
        if start < end:
            self._arr.add(start, gained)
            self._arr.add(end, lost)
            self._active_contracts.add(start, sign)
            self._active_contracts.add(end, -sign)
            if entry.churned:
                self._churned.add(end, gained)
        if contract.kind == "new":
            self._new.add(start, gained)
        elif contract.kind == "expansion":
            self._expansion.add(start, gained)

    # -- one account's spans ----------------------------------------------------------

    def _refresh_account(self, account_id: str) -> None:
        ids = self._by_account.get(account_id)
        spans: tuple[list[Span], list[Span]] = ([], [])
        if ids:
            spans = self._account_days([self._days[contract_id] for contract_id in ids])
        old = self._account_spans.get(account_id, ([], []))
        if spans == old:
            return
        self._count_spans(self._active_accounts, old[0], -1)
        self._count_spans(self._churned_accounts, old[1], -1)
        self._count_spans(self._active_accounts, spans[0], +1)
        self._count_spans(self._churned_accounts, spans[1], +1)
        if ids:
            self._account_spans[account_id] = spans
        else:
            self._account_spans.pop(account_id, None)

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

    @staticmethod
    def _count_spans(sums: DaySums[int], spans: list[Span], sign: int) -> None:
        for first, end in spans:
            sums.add(first, sign)
            sums.add(end, -sign)
