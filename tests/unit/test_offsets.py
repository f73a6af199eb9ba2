"""Skipped offsets: what an agent reads again when its consumer jumped ahead."""

from __future__ import annotations

import pytest

from streams.pipeline.offsets import skipped_ranges


@pytest.mark.parametrize(
    ("expected", "offsets", "missing", "after"),
    [
        (10, [10, 11, 12], [], 13),  # in order
        (10, [12, 13], [(10, 12)], 14),  # the two before were skipped
        (10, [11, 14, 15], [(10, 11), (12, 14)], 16),  # before and between
        (None, [7, 8], [], 9),  # unknown start: nothing before the first counts
        (None, [7, 9], [(8, 9)], 10),  # but a jump after it does
        (20, [18, 19, 20], [], 21),  # read again after a seek back: no gap
        (20, [15], [], 20),  # an old message alone keeps the expected offset
    ],
)
def test_skipped_ranges(
    expected: int | None, offsets: list[int], missing: list[tuple[int, int]], after: int
) -> None:
    assert skipped_ranges(expected, offsets) == (missing, after)
