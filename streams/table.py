"""Plain-text tables and amounts for people, shared by the commands and `revpulse dev`."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal


def format_amount(value: Decimal) -> str:
    """Thousands separated; whole numbers without decimals, others with two."""
    if value == value.to_integral_value():
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def render_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], right: frozenset[int] = frozenset()
) -> list[str]:
    """Columns padded to their widest cell; the columns in ``right`` aligned right."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in [header, *rows]
    ]
