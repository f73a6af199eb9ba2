"""What the domain hands to the sinks: a consistent set of points, and a band change."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from models.series import MetricPoint
from models.state import StateDelta


@dataclass(frozen=True)
class BandChange:
    """ACV from marketing leads moved to another band (hysteresis already applied)."""

    previous: str
    current: str
    value: Decimal
    window: str
    clock: dt.datetime

    def as_dict(self) -> dict[str, str]:
        return {
            "previous": self.previous,
            "current": self.current,
            "value": format(self.value.normalize(), "f"),
            "window": self.window,
            "clock": self.clock.isoformat(),
        }


@dataclass(frozen=True)
class Publication:
    """One consistent set of metric points, as of one metrics-clock instant."""

    points: tuple[MetricPoint, ...]
    clock: dt.datetime
    watermark: dt.datetime | None
    band: str | None = None
    band_change: BandChange | None = None
    # what the points were computed from, changed since the last publication
    state: StateDelta | None = None
