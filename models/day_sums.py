"""Amounts on days, summed over any range of days in ``O(log days)``.

What window sums and the book timeline are read from: a change and a range sum each
cost a few tree steps, whatever the number of days that carry an amount.
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
# sums through a day kept per DaySums: a publish reads about eight (windows' first days,
# the as-of day, the churn window's); past this many, older ones are dropped
_THROUGH_KEPT = 32


def money_add(a: Decimal, b: Decimal) -> Decimal:
    return MONEY_CONTEXT.add(a, b)


def money_subtract(a: Decimal, b: Decimal) -> Decimal:
    return MONEY_CONTEXT.subtract(a, b)


class DaySums(Generic[T]):
    """Amounts on days, summed over any range of days.

    A Fenwick tree over day numbers, stored sparsely: a node that sums to zero is
    dropped, so the size follows the days that carry an amount, not the updates made.
    Changes are netted per day and folded into the tree at the next read, so a burst
    of changes on a few days (today's contracts) costs a few tree updates.

    A sum through a day is kept once read, and moved by each later change on that day
    or an earlier one: publishes read the sums through the same few days (each
    window's first day and the as-of day), so those are read from the tree about once
    a day, whichever days the changes fall on.

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
        self._nodes: dict[int, T] = {}
        self._pending: dict[int, T] = {}  # per tree position, the change not yet folded in
        self._through: dict[int, T] = {}  # per tree position, the sum through it, as read
        self._stored: KeyedMap[T] | None = stored
        self._days: dict[int, T] = {}  # per day ordinal, its amount (kept with ``stored``)
        if stored is not None:
            for key, amount in stored.items():
                ordinal = int(key)
                self._days[ordinal] = amount
                self._pending[self._position(ordinal)] = amount

    @staticmethod
    def _position(ordinal: int) -> int:
        return ordinal - _FIRST_ORDINAL + 1

    def add(self, ordinal: int, amount: T) -> None:
        """Add ``amount`` on the day with this ordinal (``date.toordinal()``)."""
        position = ordinal - _FIRST_ORDINAL + 1
        if not 1 <= position <= _SIZE_DAYS:
            first = dt.date.fromordinal(_FIRST_ORDINAL)
            last = dt.date.fromordinal(_FIRST_ORDINAL + _SIZE_DAYS - 1)
            raise ValueError(f"a day must be between {first} and {last}")
        pending = self._pending
        pending[position] = self._plus(pending.get(position, self._zero), amount)
        if self._stored is not None and amount:
            total = self._plus(self._days.get(ordinal, self._zero), amount)
            if total:
                self._days[ordinal] = total
                self._stored.put(str(ordinal), total)
            else:
                del self._days[ordinal]
                self._stored.delete(str(ordinal))

    def _fold(self) -> None:
        nodes, plus, zero = self._nodes, self._plus, self._zero
        changes = sorted((start, amount) for start, amount in self._pending.items() if amount)
        self._move_through(changes)
        for start, amount in changes:
            position = start
            while position <= _SIZE_DAYS:
                total = plus(nodes.get(position, zero), amount)
                if total:
                    nodes[position] = total
                else:
                    del nodes[position]
                position += position & -position
        self._pending.clear()

    def _move_through(self, changes: list[tuple[int, T]]) -> None:
        """Move each sum through a day read before by the changes on or before that
        day, kept up to date rather than read again from the tree (a backfill of old
        days, or a late event, changes days before every window's): one pass over the
        changes and the days read, both in day order."""
        if not self._through or not changes:
            return
        plus, through = self._plus, self._through
        moved, taken = self._zero, 0
        for position in sorted(through):
            while taken < len(changes) and changes[taken][0] <= position:
                moved = plus(moved, changes[taken][1])
                taken += 1
            if moved:
                through[position] = plus(through[position], moved)

    def through(self, ordinal: int) -> T:
        """The sum of the amounts on every day up to and including this one."""
        if self._pending:
            self._fold()
        start = min(self._position(ordinal), _SIZE_DAYS)
        total = self._through.get(start)
        if total is not None:
            return total
        total = self._zero
        nodes = self._nodes
        position = start
        while position > 0:
            node = nodes.get(position)
            if node is not None:
                total = self._plus(total, node)
            position -= position & -position
        if len(self._through) >= _THROUGH_KEPT:
            self._through.clear()  # days read before, no longer the windows' (a day passed)
        self._through[start] = total
        return total

    def between(self, first: int, last: int) -> T:
        """The sum over the days from ``first`` to ``last``, both included."""
        return self._minus(self.through(last), self.through(first - 1))

    @property
    def node_count(self) -> int:
        if self._pending:
            self._fold()
        return len(self._nodes)


def money_sums(stored: KeyedMap[Decimal] | None = None) -> DaySums[Decimal]:
    # the context's own methods: the same sums as money_add and money_subtract, without
    # a Python call around each of the many adds a fold makes
    return DaySums(Decimal(0), MONEY_CONTEXT.add, MONEY_CONTEXT.subtract, stored)


def count_sums(stored: KeyedMap[int] | None = None) -> DaySums[int]:
    return DaySums(0, operator.add, operator.sub, stored)
