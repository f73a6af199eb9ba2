"""Metric policies: the choices a revenue team makes about how money is counted."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

SubYearPolicy = Literal["annualize", "cap_at_tcv"]


@dataclass(frozen=True)
class BandThresholds:
    """Bands of ACV from marketing leads; ``hysteresis`` is a fraction of the threshold."""

    strong_min: Decimal = Decimal(1_000_000)
    moderate_min: Decimal = Decimal(500_000)
    hysteresis_ratio: Decimal = Decimal("0.02")


@dataclass(frozen=True)
class MetricPolicy:
    include_one_time_fees: bool = False
    sub_year: SubYearPolicy = "annualize"
    reporting_currency: str = "USD"
    # units of the reporting currency per unit of the key currency
    fx_rates: dict[str, Decimal] = field(default_factory=dict)
    lateness: dt.timedelta = dt.timedelta(days=7)
    # how long an accepted event_id is remembered, past its event's day, behind the
    # slowest source's mark (models.dedup); never less than the lateness
    dedup_horizon: dt.timedelta = dt.timedelta(days=14)
    window_days: tuple[int, ...] = (7, 30, 90, 365)
    retention_days: int = 800
    bands: BandThresholds = BandThresholds()
    # distinct channels with a series of their own (models.channels.ChannelAdmission);
    # with an allowlist, exactly those channels, whatever the cap
    max_channels: int = 100
    channel_allowlist: frozenset[str] = frozenset()

    def rate_for(self, currency: str | None) -> Decimal | None:
        """The conversion rate into the reporting currency, or None if unknown."""
        if currency is None or currency == self.reporting_currency:
            return Decimal(1)
        return self.fx_rates.get(currency)
