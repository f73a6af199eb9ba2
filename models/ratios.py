"""Ratios with an honest zero denominator: undefined, never a fake 0."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

RATIO_SCALE = Decimal("0.000001")


def ratio(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    """``numerator / denominator`` at a fixed scale, or None when the denominator is 0."""
    if denominator == 0:
        return None
    return (numerator / denominator).quantize(RATIO_SCALE, rounding=ROUND_HALF_EVEN)
