"""A small funnel with figures worked out by hand (see the comments)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def _event(event_id: str, kind: str, at: str, **data: Any) -> dict[str, Any]:
    return {"event_id": event_id, "type": kind, "occurred_at": at, "source": "test", "data": data}


SCENARIO: list[dict[str, Any]] = [
    _event("e1", "lead.created", "2026-03-01T09:00:00Z", lead_id="L1", channel="paid_search",
           origin="marketing", estimated_value="1000.50"),
    _event("e2", "lead.created", "2026-03-01T10:00:00Z", lead_id="L2", channel="organic",
           origin="marketing"),
    _event("e3", "lead.created", "2026-03-02T10:00:00Z", lead_id="L3", channel="outbound",
           origin="sales", estimated_value=250),
    _event("e4", "lead.created", "2026-03-02T11:00:00Z", lead_id="L4", channel="paid_search",
           origin="marketing"),
    _event("e5", "lead.converted", "2026-03-03T09:00:00Z", lead_id="L1", account_id="A1"),
    _event("e6", "lead.converted", "2026-03-03T10:00:00Z", lead_id="L3", account_id="A3"),
    # 3 years, 24,000 recurring + 1,500 set-up: ACV 8,000, TCV 25,500, ARR 8,000
    _event("e7", "contract.signed", "2026-03-05T12:00:00Z", contract_id="C1", account_id="A1",
           lead_id="L1", start_date="2026-03-05", term_months=36, recurring_value="24000",
           one_time_fees="1500"),
    # 6 months for 4,000: annualized ACV 8,000, ARR 8,000
    _event("e8", "contract.signed", "2026-03-06T12:00:00Z", contract_id="C2", account_id="A3",
           lead_id="L3", start_date="2026-03-06", term_months=6, recurring_value=4000),
    _event("e9", "spend.recorded", "2026-03-04T00:00:00Z", channel="paid_search",
           amount="3000.00", currency="USD"),
    _event("e10", "spend.recorded", "2026-03-10T08:00:00Z", channel="organic", amount=1000,
           currency="USD"),
]  # fmt: skip

AS_OF = "2026-03-10"
# (metric, window, origin, channel) -> value
EXPECTED: dict[tuple[str, str, str, str], Decimal] = {
    ("leads", "30d", "all", "all"): Decimal(4),
    ("conversions", "30d", "all", "all"): Decimal(2),
    ("conversion_rate", "30d", "all", "all"): Decimal("0.5"),
    ("conversion_rate", "30d", "marketing", "all"): Decimal("0.333333"),
    ("lead_value", "30d", "all", "all"): Decimal("1250.5"),
    ("bookings_acv", "30d", "all", "all"): Decimal(8000),
    ("bookings_tcv", "30d", "all", "all"): Decimal(29500),
    ("new_customers", "30d", "all", "all"): Decimal(2),
    ("spend", "30d", "all", "all"): Decimal(4000),
    ("cac", "30d", "all", "all"): Decimal(2000),
    ("cac", "30d", "all", "paid_search"): Decimal(3000),
    ("marketing_acv", "30d", "all", "all"): Decimal(8000),
    ("marketing_acv_per_lead", "30d", "all", "all"): Decimal("2666.666667"),
    ("arr", "point", "all", "all"): Decimal(16000),
    ("book_acv", "point", "all", "all"): Decimal(8000),
    ("active_contracts", "point", "all", "all"): Decimal(2),
}
# series that must be absent: zero denominators
UNDEFINED = [("cac", "30d", "all", "organic"), ("ltv", "point", "all", "all")]
