"""One root error for revpulse; each subclass is one a caller handles differently."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


class RevpulseError(Exception):
    """Root of every error revpulse raises on purpose."""


@dataclass(frozen=True)
class FieldProblem:
    """One thing wrong with an event: where (a dotted path) and what."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class InvalidEventError(RevpulseError):
    """An event breaks the public contract. Counted and dead-lettered, never fatal."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


class ConfigError(RevpulseError):
    """The settings are inconsistent; raised at start-up, before any work."""


class OutOfReachError(RevpulseError):
    """An ``--as-of`` day or window a bounded state copy cannot answer exactly: refused,
    never answered short. ``first_day``: the first day it answers."""

    def __init__(self, day: dt.date, first_day: dt.date, reason: str) -> None:
        self.day = day
        self.first_day = first_day
        self.reason = reason
        super().__init__(f"no data for {day}: {reason}")
