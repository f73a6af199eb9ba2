"""Tables and amounts for people."""

from __future__ import annotations

from decimal import Decimal

import pytest

from streams.table import format_amount, render_table


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("1234567"), "1,234,567"),
        (Decimal("1234567.000000"), "1,234,567"),
        (Decimal("2666.666667"), "2,666.67"),
        (Decimal("0"), "0"),
    ],
)
def test_format_amount(value: Decimal, text: str) -> None:
    assert format_amount(value) == text


def test_render_table_pads_and_aligns() -> None:
    lines = render_table(
        ("metric", "value"), [("arr", "1,000"), ("conversion_rate", "30.00 %")], frozenset({1})
    )
    assert lines == [
        "metric             value",
        "arr                1,000",
        "conversion_rate  30.00 %",
    ]
