"""The band of ACV from marketing leads, with hysteresis so a value on a threshold won't flap."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal, get_args

from models.policy import BandThresholds

Band = Literal["strong", "moderate", "under"]
BAND_NAMES: tuple[Band, ...] = get_args(Band)  # highest first
_ORDER: tuple[Band, ...] = tuple(reversed(BAND_NAMES))  # lowest first


def plain_band(value: Decimal, thresholds: BandThresholds) -> Band:
    """The band of a value with no history: strong >= strong_min, under < moderate_min."""
    if value >= thresholds.strong_min:
        return "strong"
    if value >= thresholds.moderate_min:
        return "moderate"
    return "under"


def next_band(
    current: Band | None, value: Decimal | None, thresholds: BandThresholds
) -> Band | None:
    """The band after seeing ``value``. Crossing a threshold needs a margin of hysteresis.

    Going up past a threshold needs ``value >= threshold * (1 + h)``; going down needs
    ``value < threshold * (1 - h)``. An undefined value keeps the current band.
    """
    if value is None:
        return current
    if current is None:
        return plain_band(value, thresholds)
    margin = thresholds.hysteresis_ratio
    up = plain_band(value / (1 + margin), thresholds)
    down = plain_band(value / (1 - margin), thresholds) if margin < 1 else "under"
    rank = _ORDER.index(current)
    if _ORDER.index(up) > rank:
        return up
    if _ORDER.index(down) < rank:
        return down
    return current
