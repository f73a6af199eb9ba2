"""Contract value formulas: TCV, ACV and ARR contribution. Exact decimals, fixed scale."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from models.policy import SubYearPolicy

MONEY_SCALE = Decimal("0.000001")
MONTHS_PER_YEAR = 12


def quantize_money(amount: Decimal) -> Decimal:
    """Round to the fixed money scale, so sums of quantized values are exact in any order."""
    return amount.quantize(MONEY_SCALE, rounding=ROUND_HALF_EVEN)


def tcv(recurring_value: Decimal, one_time_fees: Decimal) -> Decimal:
    """Total contract value: the recurring value over the whole term plus one-time fees."""
    return quantize_money(recurring_value + one_time_fees)


def annualize(amount: Decimal, term_months: int) -> Decimal:
    """The yearly share of an amount spread evenly over ``term_months``."""
    return quantize_money(amount * MONTHS_PER_YEAR / term_months)


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
    spread = recurring_value + one_time_fees if include_one_time_fees else recurring_value
    value = annualize(spread, term_months)
    if sub_year == "cap_at_tcv" and term_months < MONTHS_PER_YEAR:
        value = min(value, quantize_money(spread))
    return value


def convert(amount: Decimal, rate: Decimal) -> Decimal:
    """An amount in the reporting currency, given the rate for its own."""
    return quantize_money(amount * rate)
