"""The contract book as an incrementally kept timeline: publishing costs no scan.

:class:`BookTimeline` answers, for any as-of day, exactly what
:func:`models.book.summarize` answers from a scan of every contract. It keeps
day-indexed sums (models.day_sums: a Fenwick tree over day numbers, so an update
and a range sum each take ``O(log days)``) of:

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
from decimal import Decimal

from models.book import ArrMovements, BookedContract, BookEntry, BookSummary, Churn
from models.day_sums import DaySums, count_sums, money_add, money_sums
from models.windows import Window

Span = tuple[int, int]  # day ordinals, first included, last excluded
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
        self._arr = money_sums()
        self._active_contracts = count_sums()
        self._new = money_sums()
        self._expansion = money_sums()
        self._churned = money_sums()
        self._active_accounts = count_sums()
        self._churned_accounts = count_sums()

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
                    money_add(seen[0], moves[0]),
                    money_add(seen[1], moves[1]),
                    money_add(seen[2], moves[2]),
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
