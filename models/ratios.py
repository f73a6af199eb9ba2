"""Ratios with an honest zero denominator: undefined, never a fake 0."""

from __future__ import annotations

from decimal import Decimal

from models.money import MONEY_CONTEXT

RATIO_SCALE = Decimal("0.000001")


def ratio(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    """``numerator / denominator`` at a fixed scale, or None when the denominator is 0.

    In the money context (60 digits), then rounded half-even at the scale: a quotient of sums at
    the contract's bounds (1.2e19 / 0.000001) fits, where 28 digits would raise."""
    if denominator == 0:
        return None
    quotient = MONEY_CONTEXT.divide(numerator, denominator)
    return quotient.quantize(RATIO_SCALE, context=MONEY_CONTEXT)
