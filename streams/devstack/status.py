"""The one-line summary ``revpulse dev`` prints while it runs: proof that figures move."""

from __future__ import annotations

from decimal import Decimal

from models.series import MetricPoint
from streams.table import format_amount

# (label, metric, window) of the figures on the line, in order
SHOWN = (
    ("new ACV", "new_acv", "30d"),
    ("marketing ACV", "marketing_acv", "30d"),
    ("conversion", "conversion_rate", "30d"),
    ("CAC", "cac", "30d"),
    ("ARR", "arr", "point"),
)


def _shown(metric: str, value: Decimal | None) -> str:
    if value is None:
        return "undefined"
    if metric == "conversion_rate":
        return f"{value * 100:.1f} %"
    return format_amount(value)


def status_line(points: list[MetricPoint], meta: dict[str, str], currency: str) -> str:
    """The headline figures for all origins and channels, from what the worker published."""
    if not points:
        return "no metrics published yet"
    overall = {
        (p.metric, p.window): p.value for p in points if p.origin == "all" and p.channel == "all"
    }
    parts = [
        f"{label}{'' if window == 'point' else f' {window}'} "
        f"{_shown(metric, overall.get((metric, window)))}"
        for label, metric, window in SHOWN
        if (metric, window) in overall
    ]
    band = meta.get("band")
    return " | ".join(parts) + f" ({currency})" + (f" | band {band}" if band else "")
