"""revpulse dev restarts a child after 1 s, doubling to 30 s; a stable run starts over."""

from __future__ import annotations

import pytest

from streams.devstack.supervision import Backoff


@pytest.mark.parametrize(
    ("ups_seconds", "delays_seconds"),
    [
        ([0.5], [1]),
        ([0.5, 0.5, 0.5, 0.5], [1, 2, 4, 8]),
        ([1, 1, 1, 1, 1, 1, 1], [1, 2, 4, 8, 16, 30, 30]),  # capped at 30 s
        ([1, 1, 1, 60], [1, 2, 4, 1]),  # up 60 s: stable, so back to 1 s
        ([1, 1, 59.9], [1, 2, 4]),  # just short of stable
        ([1] * 200, [1, 2, 4, 8, 16] + [30] * 195),  # no overflow however many
    ],
)
def test_delays(ups_seconds: list[float], delays_seconds: list[float]) -> None:
    backoff = Backoff()
    assert [backoff.next_delay_seconds(up) for up in ups_seconds] == delays_seconds
    assert backoff.restarts == len(ups_seconds)


def test_other_bounds() -> None:
    backoff = Backoff(first_seconds=0.5, max_seconds=3, stable_seconds=10)
    assert [backoff.next_delay_seconds(0) for _ in range(4)] == [0.5, 1, 2, 3]
    assert backoff.next_delay_seconds(10) == 0.5
