"""Bands of ACV from marketing leads: plain thresholds and hysteresis."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.band import Band, next_band, plain_band
from models.policy import BandThresholds

D = Decimal
DEFAULT = BandThresholds()  # strong >= 1,000,000; moderate >= 500,000; hysteresis 2 %


@pytest.mark.parametrize(
    ("value", "band"),
    [
        (D(2_000_000), "strong"),
        (D(1_000_000), "strong"),
        (D("999999.99"), "moderate"),
        (D(750_000), "moderate"),
        (D(500_000), "moderate"),
        (D("499999.99"), "under"),
        (D(0), "under"),
    ],
)
def test_plain_band(value: Decimal, band: Band) -> None:
    assert plain_band(value, DEFAULT) == band


@pytest.mark.parametrize(
    ("current", "value", "expected"),
    [
        # no history: the plain band
        (None, None, None),
        (None, D(1_000_000), "strong"),
        (None, D(999_999), "moderate"),
        (None, D(100), "under"),
        # an undefined value keeps the band
        ("moderate", None, "moderate"),
        ("strong", None, "strong"),
        # up past 1,000,000 needs 1,020,000
        ("moderate", D(1_000_000), "moderate"),
        ("moderate", D(1_019_999), "moderate"),
        ("moderate", D(1_020_000), "strong"),
        # down past 1,000,000 needs below 980,000
        ("strong", D(999_999), "strong"),
        ("strong", D(980_000), "strong"),
        ("strong", D(979_999), "moderate"),
        # up past 500,000 needs 510,000
        ("under", D(500_000), "under"),
        ("under", D(509_999), "under"),
        ("under", D(510_000), "moderate"),
        # down past 500,000 needs below 490,000
        ("moderate", D(490_000), "moderate"),
        ("moderate", D(489_999), "under"),
        # two bands at once
        ("under", D(1_020_000), "strong"),
        ("under", D(1_019_999), "moderate"),
        ("strong", D(489_999), "under"),
        ("strong", D(490_000), "moderate"),
        # staying put
        ("strong", D(5_000_000), "strong"),
        ("under", D(0), "under"),
    ],
)
def test_next_band_with_hysteresis(
    current: Band | None, value: Decimal | None, expected: Band | None
) -> None:
    assert next_band(current, value, DEFAULT) == expected


@pytest.mark.parametrize(
    ("start", "values", "bands"),
    [
        # sitting on the threshold, wobbling by 1 %: no flapping
        (
            "moderate",
            [1_000_000, 1_010_000, 990_000, 1_005_000, 995_000, 1_000_000],
            ["moderate"] * 6,
        ),
        (
            "strong",
            [1_000_000, 990_000, 1_010_000, 985_000, 1_000_000],
            ["strong"] * 5,
        ),
        # real moves of 3 % cross each time
        (
            "moderate",
            [1_030_000, 970_000, 1_030_000],
            ["strong", "moderate", "strong"],
        ),
        # a slide down and a recovery
        (
            "strong",
            [950_000, 700_000, 495_000, 480_000, 505_000, 520_000, 1_010_000, 1_025_000],
            [
                "moderate",
                "moderate",
                "moderate",
                "under",
                "under",
                "moderate",
                "moderate",
                "strong",
            ],
        ),
    ],
)
def test_band_sequences(start: Band, values: list[int], bands: list[Band]) -> None:
    current: Band | None = start
    seen = []
    for number in values:
        current = next_band(current, D(number), DEFAULT)
        seen.append(current)
    assert seen == bands


@pytest.mark.parametrize(
    ("thresholds", "current", "value", "expected"),
    [
        (BandThresholds(D(100), D(50), D(0)), "moderate", D(100), "strong"),
        (BandThresholds(D(100), D(50), D(0)), "strong", D("99.99"), "moderate"),
        (BandThresholds(D(100), D(50), D("0.1")), "moderate", D(109), "moderate"),
        (BandThresholds(D(100), D(50), D("0.1")), "moderate", D(110), "strong"),
        (BandThresholds(D(100), D(50), D("0.1")), "moderate", D(45), "moderate"),
        (BandThresholds(D(100), D(50), D("0.1")), "moderate", D("44.99"), "under"),
    ],
)
def test_configurable_thresholds(
    thresholds: BandThresholds, current: Band, value: Decimal, expected: Band
) -> None:
    assert next_band(current, value, thresholds) == expected


values = st.decimals(min_value=0, max_value=3_000_000, places=2)
bands = st.sampled_from(["strong", "moderate", "under"])


@given(current=bands, value=values)
def test_without_hysteresis_the_band_is_the_plain_band(current: Band, value: Decimal) -> None:
    no_margin = BandThresholds(hysteresis_ratio=D(0))
    assert next_band(current, value, no_margin) == plain_band(value, no_margin)


@given(current=bands, value=values)
def test_a_change_moves_toward_the_plain_band_and_is_stable(current: Band, value: Decimal) -> None:
    order = ["under", "moderate", "strong"]
    after = next_band(current, value, DEFAULT)
    assert after is not None
    plain = plain_band(value, DEFAULT)
    if after != current:
        # it moved in the direction of the plain band, never past it
        lo, hi = sorted((order.index(current), order.index(plain)))
        assert lo <= order.index(after) <= hi
    # seeing the same value again changes nothing
    assert next_band(after, value, DEFAULT) == after
