"""Where a book timeline's changes go: day-indexed sums, or the changes themselves.

A :class:`models.timeline.BookTimeline` turns contracts and churns into changes of
seven sums over days (ARR, active contracts, new, expansion and churned ARR, active
and churned accounts). :class:`TimelineSums` adds them up per day and per block of
days (:class:`models.day_sums.DaySums`), so any day's book is read without going
through the contracts; :class:`SumChanges` only collects them, netted per day, so a
timeline that holds part of the book (the accounts of one partition) can send them on
to the one place where every part's changes meet (``Ledger.apply_changes``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from models.book import ArrMovements, BookSummary
from models.day_sums import DaySums, count_sums, money_add, money_sums
from models.keyed import COUNT, MONEY, MemoryMaps, StateMaps
from models.money import MONEY_CONTEXT
from models.windows import Window

MONEY_SUMS = ("arr", "new", "expansion", "churned")
COUNT_SUMS = ("active_contracts", "active_accounts", "churned_accounts")
SUM_NAMES = MONEY_SUMS + COUNT_SUMS

SumDay = tuple[str, int]  # a sum's name and a day ordinal


class TimelineSums:
    """The seven sums over days, kept in maps named ``timeline.sum.<name>``."""

    def __init__(self, churn_window_days: int, maps: StateMaps | None = None) -> None:
        maps = MemoryMaps() if maps is None else maps
        self.churn_window_days = churn_window_days
        self._money: dict[str, DaySums[Decimal]] = {
            name: money_sums(maps.open(f"timeline.sum.{name}", MONEY)) for name in MONEY_SUMS
        }
        self._counts: dict[str, DaySums[int]] = {
            name: count_sums(maps.open(f"timeline.sum.{name}", COUNT)) for name in COUNT_SUMS
        }

    def add(self, name: str, ordinal: int, amount: Decimal | int) -> None:
        if name in self._money:
            self._money[name].add(ordinal, Decimal(amount))
        else:
            assert isinstance(amount, int)
            self._counts[name].add(ordinal, amount)

    def summary(self, as_of: dt.date, windows: list[Window], churn_window: Window) -> BookSummary:
        """The book on ``as_of`` and each window's ARR movements.

        ``churn_window`` must end on ``as_of`` and span ``churn_window_days`` days."""
        span_days = (churn_window.last_day - churn_window.first_day).days + 1
        if churn_window.last_day != as_of or span_days != self.churn_window_days:
            raise ValueError(
                f"the churn window must be the {self.churn_window_days} days ending on {as_of}"
            )
        money, counts = self._money, self._counts
        day = as_of.toordinal()
        totals: dict[str, tuple[Decimal, Decimal, Decimal]] = {}
        for window in windows:
            first, last = window.first_day.toordinal(), window.last_day.toordinal()
            moves = (
                money["new"].between(first, last),
                money["expansion"].between(first, last),
                money["churned"].between(first, last),
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
            arr=money["arr"].through(day),
            active_contracts=counts["active_contracts"].through(day),
            active_accounts=counts["active_accounts"].through(day),
            movements={name: ArrMovements(*moves) for name, moves in totals.items()},
            churned_accounts=counts["churned_accounts"].through(day),
            accounts_at_start=counts["active_accounts"].through(churn_window.first_day.toordinal()),
        )

    @property
    def size(self) -> int:
        """Entries held over every sum: follows live days, not changes made."""
        held = [sums.entry_count for sums in self._money.values()]
        return sum(held) + sum(sums.entry_count for sums in self._counts.values())


class SumChanges:
    """Changes to the seven sums, netted per (sum, day), until taken."""

    def __init__(self) -> None:
        self._changes: dict[SumDay, Decimal | int] = {}

    def add(self, name: str, ordinal: int, amount: Decimal | int) -> None:
        key = (name, ordinal)
        if name in MONEY_SUMS:
            total: Decimal | int = MONEY_CONTEXT.add(
                Decimal(self._changes.get(key, 0)), Decimal(amount)
            )
        else:
            total = int(self._changes.get(key, 0)) + int(amount)
        if total:
            self._changes[key] = total
        else:
            self._changes.pop(key, None)

    def take(self) -> dict[SumDay, Decimal | int]:
        """Every non-zero change since the last call."""
        taken, self._changes = self._changes, {}
        return taken
