"""When ``revpulse dev`` restarts a child that exited: exponential backoff, pure arithmetic."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Backoff:
    """Delays of ``first_seconds`` doubling up to ``max_seconds`` for a child that keeps
    failing; a child that stayed up ``stable_seconds`` starts again from ``first_seconds``."""

    first_seconds: float = 1.0
    max_seconds: float = 30.0
    stable_seconds: float = 60.0
    restarts: int = 0  # since dev started
    _quick_failures: int = 0  # exits in a row, each after less than stable_seconds up

    def next_delay_seconds(self, up_seconds: float) -> float:
        """A child that had run ``up_seconds`` exited: wait this long before the next start."""
        if up_seconds >= self.stable_seconds:
            self._quick_failures = 0
        delay = min(self.max_seconds, self.first_seconds * 2.0 ** min(self._quick_failures, 32))
        self._quick_failures += 1
        self.restarts += 1
        return delay
