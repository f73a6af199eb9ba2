"""The bounds of the event contract: what the ledger is sure to hold and compute on.

Every value an event may carry lies within these, so every date the ledger derives
(a term end, a window) and every sum it keeps stays far from the limits of
``datetime`` and of the decimal context in :mod:`models.money`.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

MIN_DATE = dt.date(1900, 1, 1)
MAX_DATE = dt.date(2199, 12, 31)
# occurred_at, as a UTC instant, lies within these two (both included)
MIN_INSTANT = dt.datetime.combine(MIN_DATE, dt.time.min, tzinfo=dt.UTC)
MAX_INSTANT = dt.datetime.combine(MAX_DATE, dt.time.max, tzinfo=dt.UTC)
MAX_MONEY = Decimal("1000000000000")  # 1e12, included, for every money field
MONEY_DECIMALS = 6  # decimal places; trailing zeros beyond them do not count
MAX_TERM_MONTHS = 1200


def decimal_places(value: Decimal) -> int:
    """The number of decimal places ``value`` needs, exactly: 1E+3 needs 0, 1.50 needs 1.

    Reads the digits, so it never rounds and works for any exponent (no context)."""
    _sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):  # NaN or infinity
        raise ValueError("must be a finite number")
    significant = len(digits)
    while significant > 0 and digits[significant - 1] == 0:
        significant -= 1
    if significant == 0:  # zero, however written
        return 0
    return max(0, -(exponent + len(digits) - significant))
