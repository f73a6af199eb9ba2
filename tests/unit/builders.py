"""Small builders of contract-valid events for the unit tests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from models.book import BookedContract
from models.events import Event, parse_event
from models.series import MetricPoint


def raw_event(event_type: str, event_id: str, when: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"event_id": event_id, "type": event_type, "occurred_at": when, "data": data}


def noon(day: str) -> str:
    """An RFC 3339 timestamp at noon UTC on ``day`` (YYYY-MM-DD)."""
    return f"{day}T12:00:00Z"


def lead(
    event_id: str,
    lead_id: str,
    day: str,
    *,
    origin: str = "marketing",
    channel: str = "paid_search",
    estimated_value: str | None = None,
) -> Event:
    data: dict[str, Any] = {"lead_id": lead_id, "origin": origin, "channel": channel}
    if estimated_value is not None:
        data["estimated_value"] = estimated_value
    return parse_event(raw_event("lead.created", event_id, noon(day), data))


def conversion(event_id: str, lead_id: str, day: str) -> Event:
    return parse_event(raw_event("lead.converted", event_id, noon(day), {"lead_id": lead_id}))


def contract(
    event_id: str,
    contract_id: str,
    day: str,
    *,
    account_id: str = "A1",
    lead_id: str | None = None,
    kind: str = "new",
    start_date: str | None = None,
    term_months: int = 12,
    recurring_value: str = "12000",
    one_time_fees: str = "0",
    currency: str | None = None,
    origin: str | None = None,
    channel: str | None = None,
) -> Event:
    data: dict[str, Any] = {
        "contract_id": contract_id,
        "account_id": account_id,
        "kind": kind,
        "start_date": start_date or day,
        "term_months": term_months,
        "recurring_value": recurring_value,
        "one_time_fees": one_time_fees,
    }
    optional = {"lead_id": lead_id, "currency": currency, "origin": origin, "channel": channel}
    data.update({key: value for key, value in optional.items() if value is not None})
    return parse_event(raw_event("contract.signed", event_id, noon(day), data))


def churn(
    event_id: str,
    account_id: str,
    day: str,
    *,
    contract_id: str | None = None,
    effective_date: str | None = None,
) -> Event:
    data: dict[str, Any] = {"account_id": account_id}
    if contract_id is not None:
        data["contract_id"] = contract_id
    if effective_date is not None:
        data["effective_date"] = effective_date
    return parse_event(raw_event("customer.churned", event_id, noon(day), data))


def spend(event_id: str, channel: str, amount: str, day: str, *, currency: str = "USD") -> Event:
    data = {"channel": channel, "amount": amount, "currency": currency}
    return parse_event(raw_event("spend.recorded", event_id, noon(day), data))


def find(
    points: list[MetricPoint],
    metric: str,
    window: str,
    origin: str = "all",
    channel: str = "all",
) -> MetricPoint:
    """The one point of a series; fails the test if it is missing or repeated."""
    found = [
        p
        for p in points
        if (p.metric, p.window, p.origin, p.channel) == (metric, window, origin, channel)
    ]
    assert len(found) == 1, f"{metric}|{window}|{origin}|{channel}: {len(found)} points"
    return found[0]


def value(
    points: list[MetricPoint],
    metric: str,
    window: str,
    origin: str = "all",
    channel: str = "all",
) -> Decimal | None:
    return find(points, metric, window, origin, channel).value


def has_series(points: list[MetricPoint], metric: str, origin: str, channel: str) -> bool:
    return any((p.metric, p.origin, p.channel) == (metric, origin, channel) for p in points)


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def booked(
    contract_id: str = "C1",
    account_id: str = "A1",
    start: dt.date = dt.date(2024, 1, 15),
    term_months: int = 12,
    arr: str = "12000",
    kind: str = "new",
) -> BookedContract:
    """A booked contract: ARR in the reporting currency, starting on ``start``."""
    return BookedContract(contract_id, account_id, kind, start, term_months, Decimal(arr))
