"""Contract value formulas: TCV, ACV and ARR contribution. Exact decimals, fixed scale.

All money arithmetic runs in :data:`MONEY_CONTEXT`, never in the thread's default
context (28 digits): contract values at the contract's bounds (1e12 at 6 decimals, a
1-month term, an exchange rate) and sums of millions of them need more, and a quantize
past the context's precision raises ``InvalidOperation``.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_EVEN, Context, Decimal, DivisionByZero, InvalidOperation, Overflow

from models.policy import SubYearPolicy

MONEY_SCALE = Decimal("0.000001")
MONTHS_PER_YEAR = 12
# 60 significant digits: 53 before the point at the money scale. A contract at the
# bounds is worth at most 1.2e13 a year in its currency; a sum of a billion of them,
# converted at a rate of 1e20, still fits exactly.
MONEY_CONTEXT = Context(
    prec=60, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow]
)
_ZERO = Decimal(0)


def quantize_money(amount: Decimal) -> Decimal:
    """Round to the fixed money scale, so sums of quantized values are exact in any order."""
    return amount.quantize(MONEY_SCALE, context=MONEY_CONTEXT)


def add(a: Decimal, b: Decimal) -> Decimal:
    """``a + b`` in the money context: exact for any sum the ledger keeps."""
    return MONEY_CONTEXT.add(a, b)


def money_sum(amounts: Iterable[Decimal]) -> Decimal:
    """The exact sum of amounts (``sum`` would round past 28 digits)."""
    total = _ZERO
    for amount in amounts:
        total = MONEY_CONTEXT.add(total, amount)
    return total


def tcv(recurring_value: Decimal, one_time_fees: Decimal) -> Decimal:
    """Total contract value: the recurring value over the whole term plus one-time fees."""
    return quantize_money(add(recurring_value, one_time_fees))


def annualize(amount: Decimal, term_months: int) -> Decimal:
    """The yearly share of an amount spread evenly over ``term_months``."""
    yearly = MONEY_CONTEXT.multiply(amount, MONTHS_PER_YEAR)
    return quantize_money(MONEY_CONTEXT.divide(yearly, term_months))


def arr_contribution(recurring_value: Decimal, term_months: int) -> Decimal:
    """What one active contract adds to ARR. One-time fees never count."""
    return annualize(recurring_value, term_months)


def acv(
    recurring_value: Decimal,
    term_months: int,
    one_time_fees: Decimal = Decimal(0),
    *,
    include_one_time_fees: bool = False,
    sub_year: SubYearPolicy = "annualize",
) -> Decimal:
    """Annual contract value of one contract, under the given policies.

    A contract shorter than a year is annualized, unless ``sub_year`` is
    ``cap_at_tcv``, in which case it never exceeds what the contract is worth.
    """
    spread = add(recurring_value, one_time_fees) if include_one_time_fees else recurring_value
    value = annualize(spread, term_months)
    if sub_year == "cap_at_tcv" and term_months < MONTHS_PER_YEAR:
        value = min(value, quantize_money(spread))
    return value


def convert(amount: Decimal, rate: Decimal) -> Decimal:
    """An amount in the reporting currency, given the rate for its own."""
    return quantize_money(MONEY_CONTEXT.multiply(amount, rate))
