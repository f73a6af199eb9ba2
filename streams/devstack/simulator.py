"""A CRM funnel simulator: leads by channel and origin, conversions, contracts, churn, spend.

Pure: the random generator and the time are passed in; it returns event dicts.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

CHANNELS = ("paid_search", "organic", "events", "referral", "outbound")
ORIGIN_BY_CHANNEL = {
    "paid_search": "marketing",
    "organic": "marketing",
    "events": "marketing",
    "referral": "partner",
    "outbound": "sales",
}
TERMS_MONTHS = (12, 24, 36)


@dataclass
class FunnelSimulator:
    rng: random.Random
    source: str = "simulator"
    conversion_probability: float = 0.3
    close_probability: float = 0.5
    _sequence: int = 0
    _open_leads: list[tuple[str, str, str]] = field(default_factory=list)
    _converted: list[tuple[str, str, str]] = field(default_factory=list)
    _accounts: list[str] = field(default_factory=list)

    def _envelope(self, kind: str, at: dt.datetime, data: dict[str, Any]) -> dict[str, Any]:
        self._sequence += 1
        return {
            "event_id": f"{self.source}-{self.rng.getrandbits(48):012x}-{self._sequence}",
            "type": kind,
            "occurred_at": at.isoformat(),
            "source": self.source,
            "data": data,
        }

    def _money(self, low: int, high: int) -> str:
        return str(Decimal(self.rng.randrange(low * 100, high * 100)) / 100)

    def step(self, at: dt.datetime) -> list[dict[str, Any]]:
        """The events of one tick of the funnel at time ``at``."""
        rng, events = self.rng, []
        channel = rng.choice(CHANNELS)
        lead_id = f"L{self._sequence + 1}-{rng.getrandbits(24):06x}"
        self._open_leads.append((lead_id, channel, ORIGIN_BY_CHANNEL[channel]))
        events.append(self._envelope("lead.created", at, {
            "lead_id": lead_id, "channel": channel, "origin": ORIGIN_BY_CHANNEL[channel],
            "campaign": f"{channel}-q{(at.month - 1) // 3 + 1}",
            "estimated_value": self._money(100_000, 1_500_000),
        }))  # fmt: skip
        if len(self._open_leads) > 3 and rng.random() < self.conversion_probability:
            lead = self._open_leads.pop(rng.randrange(len(self._open_leads)))
            account_id = f"A-{lead[0]}"
            self._converted.append((lead[0], lead[1], account_id))
            events.append(self._envelope(
                "lead.converted", at, {"lead_id": lead[0], "account_id": account_id}
            ))  # fmt: skip
        if self._converted and rng.random() < self.close_probability:
            lead_id, _channel, account_id = self._converted.pop(0)
            term = rng.choice(TERMS_MONTHS)
            acv = rng.randrange(250_000, 1_800_000)
            events.append(self._envelope("contract.signed", at, {
                "contract_id": f"C-{lead_id}", "account_id": account_id, "lead_id": lead_id,
                "kind": "new", "start_date": at.date().isoformat(), "term_months": term,
                "recurring_value": str(acv * term // 12),
                "one_time_fees": self._money(0, 20_000),
            }))  # fmt: skip
            self._accounts.append(account_id)
        if self._accounts and rng.random() < 0.08:
            account_id = rng.choice(self._accounts)
            kind = rng.choice(("expansion", "renewal"))
            events.append(self._envelope("contract.signed", at, {
                "contract_id": f"C-{kind}-{self._sequence}", "account_id": account_id,
                "kind": kind, "start_date": at.date().isoformat(), "term_months": 12,
                "recurring_value": str(rng.randrange(50_000, 400_000)),
            }))  # fmt: skip
        if len(self._accounts) > 5 and rng.random() < 0.02:
            account_id = self._accounts.pop(rng.randrange(len(self._accounts)))
            events.append(self._envelope("customer.churned", at, {"account_id": account_id}))
        if rng.random() < 0.5:
            events.append(self._envelope("spend.recorded", at, {
                "channel": rng.choice(CHANNELS[:3]), "amount": self._money(1_000, 40_000),
                "currency": "USD",
            }))  # fmt: skip
        return events
