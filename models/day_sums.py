"""Amounts on days, summed over any range of days.

What window sums and the book timeline are read from: each day's amount is kept, and
so is the sum of each block of days, so a change costs two entries updated and a sum
read afresh adds up the blocks before its day and the days of its block up to it.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable
from decimal import Decimal
from typing import Generic, TypeVar

from models.keyed import KeyedMap
from models.money import MONEY_CONTEXT

T = TypeVar("T", int, Decimal)

# Day numbers a DaySums can hold: 2**18 days from 1800-01-01 (to 2517), wide around
# the event contract's dates (models.limits) and the churn window shifted past them.
_FIRST_ORDINAL = dt.date(1800, 1, 1).toordinal()
_SIZE_DAYS = 1 << 18
_LAST_ORDINAL = _FIRST_ORDINAL + _SIZE_DAYS - 1
# days per block, 2**_BLOCK_SHIFT: a day's block is its ordinal shifted right. 32: a
# bucket's ~800 days within the retention are 25 blocks, so a sum read afresh adds up
# at most 25 block sums and 32 days' amounts (a timeline's years of days, more blocks)
_BLOCK_SHIFT = 5
_BLOCK_DAYS = 1 << _BLOCK_SHIFT
# sums through a day kept per DaySums: a publish reads about eight (windows' first days,
# the as-of day, the churn window's); past this many, older ones are dropped
_THROUGH_KEPT = 32


def money_add(a: Decimal, b: Decimal) -> Decimal:
    return MONEY_CONTEXT.add(a, b)


def money_subtract(a: Decimal, b: Decimal) -> Decimal:
    return MONEY_CONTEXT.subtract(a, b)


class DaySums(Generic[T]):
    """Amounts on days, summed over any range of days.

    Each day's amount is kept by its ordinal, and each block of ``_BLOCK_DAYS`` days
    keeps the sum of its days' amounts; an amount or a block sum that comes to zero is
    dropped, so the size follows the days that carry an amount, not the updates made.
    Changes are netted per day and folded in at the next read: a change costs its
    day's amount and its block's sum updated, whatever the number of days held.

    A sum through a day is kept once read, and moved by each later change on that day
    or an earlier one: publishes read the sums through the same few days (each
    window's first day and the as-of day), so those are read afresh about once a day,
    whichever days the changes fall on. A sum read afresh adds up the sums of the
    blocks held before its day's block and the amounts of that block's days up to it.

    ``stored``: a map that keeps each day's amount (keyed by the day's ordinal), so the
    sums can be made again from it; a DaySums made on a map that holds amounts starts
    from them.
    """

    def __init__(
        self,
        zero: T,
        plus: Callable[[T, T], T],
        minus: Callable[[T, T], T],
        stored: KeyedMap[T] | None = None,
    ) -> None:
        self._zero: T = zero
        self._plus: Callable[[T, T], T] = plus
        self._minus: Callable[[T, T], T] = minus
        self._amounts: dict[int, T] = {}  # per day ordinal, its amount, as folded in
        self._blocks: dict[int, T] = {}  # per block (ordinal >> _BLOCK_SHIFT), its sum
        self._pending: dict[int, T] = {}  # per day ordinal, the change not yet folded in
        self._through: dict[int, T] = {}  # per day ordinal, the sum through it, as read
        self._stored: KeyedMap[T] | None = stored
        if stored is not None:
            for key, amount in stored.items():
                self._pending[int(key)] = amount

    def add(self, ordinal: int, amount: T) -> None:
        """Add ``amount`` on the day with this ordinal (``date.toordinal()``)."""
        if not _FIRST_ORDINAL <= ordinal <= _LAST_ORDINAL:
            first = dt.date.fromordinal(_FIRST_ORDINAL)
            last = dt.date.fromordinal(_LAST_ORDINAL)
            raise ValueError(f"a day must be between {first} and {last}")
        pending = self._pending
        change = pending[ordinal] = self._plus(pending.get(ordinal, self._zero), amount)
        if self._stored is not None and amount:
            # the day's amount: as folded in, and the netted change not yet folded
            total = self._plus(self._amounts.get(ordinal, self._zero), change)
            if total:
                self._stored.put(str(ordinal), total)
            else:
                self._stored.delete(str(ordinal))

    def _fold(self) -> None:
        amounts, blocks, plus, zero = self._amounts, self._blocks, self._plus, self._zero
        changes = sorted((day, amount) for day, amount in self._pending.items() if amount)
        self._move_through(changes)
        for day, amount in changes:
            total = plus(amounts.get(day, zero), amount)
            if total:
                amounts[day] = total
            else:
                del amounts[day]
            block = day >> _BLOCK_SHIFT
            total = plus(blocks.get(block, zero), amount)
            if total:
                blocks[block] = total
            else:
                del blocks[block]  # its days' amounts may not be zero: they net out
        self._pending.clear()

    def _move_through(self, changes: list[tuple[int, T]]) -> None:
        """Move each sum through a day read before by the changes on or before that
        day, kept up to date rather than read again (a backfill of old days, or a late
        event, changes days before every window's): one pass over the changes and the
        days read, both in day order."""
        if not self._through or not changes:
            return
        plus, through = self._plus, self._through
        moved, taken = self._zero, 0
        for day in sorted(through):
            while taken < len(changes) and changes[taken][0] <= day:
                moved = plus(moved, changes[taken][1])
                taken += 1
            if moved:
                through[day] = plus(through[day], moved)

    def through(self, ordinal: int) -> T:
        """The sum of the amounts on every day up to and including this one."""
        if self._pending:
            self._fold()
        total = self._through.get(ordinal)
        if total is not None:
            return total
        plus = self._plus
        total = self._zero
        block = ordinal >> _BLOCK_SHIFT
        for held, block_sum in self._blocks.items():
            if held < block:
                total = plus(total, block_sum)
        amounts = self._amounts
        for day in range(block << _BLOCK_SHIFT, ordinal + 1):
            amount = amounts.get(day)
            if amount is not None:
                total = plus(total, amount)
        if len(self._through) >= _THROUGH_KEPT:
            self._through.clear()  # days read before, no longer the windows' (a day passed)
        self._through[ordinal] = total
        return total

    def between(self, first: int, last: int) -> T:
        """The sum over the days from ``first`` to ``last``, both included."""
        return self._minus(self.through(last), self.through(first - 1))

    @property
    def entry_count(self) -> int:
        """Entries held: the days that carry an amount and the blocks whose sum is not
        zero."""
        if self._pending:
            self._fold()
        return len(self._amounts) + len(self._blocks)


def money_sums(stored: KeyedMap[Decimal] | None = None) -> DaySums[Decimal]:
    # the context's own methods: the same sums as money_add and money_subtract, without
    # a Python call around each of the many adds a sum read afresh makes
    return DaySums(Decimal(0), MONEY_CONTEXT.add, MONEY_CONTEXT.subtract, stored)


def count_sums(stored: KeyedMap[int] | None = None) -> DaySums[int]:
    return DaySums(0, operator.add, operator.sub, stored)
