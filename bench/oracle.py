"""A batch reference for every metric point: the slow, obvious way, for tests to trust.

It reads a plain list of validated events and computes each point directly: dedupe by
``event_id``, pick one winner per entity (the earliest event by ``occurred_at``, then
``event_id``), attribute, then filter by day and sum. It shares no code with the streaming
path (ledger, buckets, book, series) beyond the formulas in ``money``, ``ratios`` and
``windows``, so the two can be checked against each other.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from models import money
from models.errors import FieldProblem, InvalidEventError
from models.events import (
    OVERFLOW_CHANNEL,
    UNKNOWN,
    ContractSigned,
    CustomerChurned,
    Event,
    LeadConverted,
    LeadCreated,
    SpendRecorded,
)
from models.policy import MetricPolicy
from models.ratios import ratio
from models.series import MetricPoint
from models.windows import Window, add_months, rolling, windows_ending

# (dimension, value): ("all", "all"), ("origin", "marketing"), ("channel", "organic")
Segment = tuple[str, str]
ALL: Segment = ("all", "all")
MARKETING: Segment = ("origin", "marketing")
POINT_WINDOW = "point"  # the window label of a point-in-time metric


@dataclass(frozen=True)
class _Fact:
    """One counted thing on one UTC day, attributed to an origin and a channel."""

    day: dt.date
    origin: str
    channel: str

    def counts_in(self, segment: Segment) -> bool:
        dim, value = segment
        if dim == "origin":
            return self.origin == value
        if dim == "channel":
            return self.channel == value
        return True


@dataclass(frozen=True)
class _Lead(_Fact):
    value: Decimal


@dataclass(frozen=True)
class _Booking(_Fact):
    kind: str
    acv: Decimal
    tcv: Decimal


@dataclass(frozen=True)
class _Spend(_Fact):
    amount: Decimal


@dataclass(frozen=True)
class _Term:
    """A contract on the book: active on ``start_date <= day < end_date``."""

    account_id: str
    kind: str
    start_date: dt.date
    term_end: dt.date
    end_date: dt.date
    arr: Decimal

    def active_on(self, day: dt.date) -> bool:
        return self.start_date <= day < self.end_date

    @property
    def churned(self) -> bool:
        return self.end_date < self.term_end


E = TypeVar("E", LeadCreated, LeadConverted, ContractSigned)


def _winners(events: Iterable[E], entity: Callable[[E], str]) -> dict[str, E]:
    """The earliest event per entity id, by (occurred_at, event_id)."""
    found: dict[str, E] = {}
    for event in events:
        key = entity(event)
        current = found.get(key)
        if current is None or (event.occurred_at, event.event_id) < (
            current.occurred_at,
            current.event_id,
        ):
            found[key] = event
    return found


def _rate(policy: MetricPolicy, currency: str | None) -> Decimal:
    rate = policy.rate_for(currency)
    if rate is None:
        raise InvalidEventError([FieldProblem("data.currency", f"no exchange rate for {currency}")])
    return rate


def _channel_labels(accepted: Sequence[Event], policy: MetricPolicy) -> dict[str, str]:
    """Per event_id, the label its sender's channel counts under, by the cap's rule:
    with an allowlist, exactly its channels keep their own label; without one, the first
    ``max_channels`` distinct channels in input order do; the rest count as overflow.
    ``unknown`` always keeps its label and never counts toward the cap."""
    allowlist = {channel.lower() for channel in policy.channel_allowlist}
    admitted: set[str] = set()
    labels: dict[str, str] = {}
    for event in accepted:
        if not isinstance(event, LeadCreated | SpendRecorded | ContractSigned):
            continue
        channel = event.data.channel
        if channel is None:
            continue
        if channel == UNKNOWN:
            label = channel
        elif allowlist:
            label = channel if channel in allowlist else OVERFLOW_CHANNEL
        elif channel in admitted or len(admitted) < policy.max_channels:
            admitted.add(channel)
            label = channel
        else:
            label = OVERFLOW_CHANNEL
        labels[event.event_id] = label
    return labels


class _Facts:
    """Every event reduced to what the metrics count."""

    def __init__(self, events: Sequence[Event], policy: MetricPolicy) -> None:
        unique: dict[str, Event] = {}
        for event in events:
            unique.setdefault(event.event_id, event)
        accepted = list(unique.values())
        labels = _channel_labels(accepted, policy)
        leads = _winners(
            (e for e in accepted if isinstance(e, LeadCreated)), lambda e: e.data.lead_id
        )
        conversions = _winners(
            (e for e in accepted if isinstance(e, LeadConverted)), lambda e: e.data.lead_id
        )
        contracts = _winners(
            (e for e in accepted if isinstance(e, ContractSigned)), lambda e: e.data.contract_id
        )
        churns = [e for e in accepted if isinstance(e, CustomerChurned)]

        def lead_origin_channel(lead_id: str | None) -> tuple[str, str]:
            lead = leads.get(lead_id) if lead_id is not None else None
            if lead is None:
                return UNKNOWN, UNKNOWN
            return lead.data.origin, labels[lead.event_id]

        self.leads = [
            _Lead(
                lead.occurred_day,
                lead.data.origin,
                labels[lead.event_id],
                money.quantize_money(lead.data.estimated_value or Decimal(0)),
            )
            for lead in leads.values()
        ]
        self.conversions = [
            _Fact(conversion.occurred_day, *lead_origin_channel(lead_id))
            for lead_id, conversion in conversions.items()
        ]
        self.bookings: list[_Booking] = []
        self.terms: list[_Term] = []
        for contract in contracts.values():
            data = contract.data
            lead_origin, lead_channel = lead_origin_channel(data.lead_id)
            rate = _rate(policy, data.currency)
            recurring = money.convert(data.recurring_value, rate)
            fees = money.convert(data.one_time_fees, rate)
            acv = money.acv(
                recurring,
                data.term_months,
                fees,
                include_one_time_fees=policy.include_one_time_fees,
                sub_year=policy.sub_year,
            )
            self.bookings.append(
                _Booking(
                    contract.occurred_day,
                    data.origin or lead_origin,
                    labels.get(contract.event_id) or lead_channel,
                    data.kind,
                    acv,
                    money.tcv(recurring, fees),
                )
            )
            term_end = add_months(data.start_date, data.term_months)
            ends = [term_end]
            for churn in churns:
                if churn.data.contract_id is not None:
                    applies = churn.data.contract_id == data.contract_id
                else:
                    applies = (
                        churn.data.account_id == data.account_id
                        and data.start_date <= churn.effective_date
                    )
                if applies:
                    ends.append(max(data.start_date, churn.effective_date))
            self.terms.append(
                _Term(
                    data.account_id,
                    data.kind,
                    data.start_date,
                    term_end,
                    min(ends),
                    money.arr_contribution(recurring, data.term_months),
                )
            )
        # spend has a channel only: its origin is never a segment it is reported in
        self.spends = [
            _Spend(
                e.occurred_day,
                UNKNOWN,
                labels[e.event_id],
                money.convert(e.data.amount, _rate(policy, e.data.currency)),
            )
            for e in accepted
            if isinstance(e, SpendRecorded)
        ]


F = TypeVar("F", bound=_Fact)


def _in(facts: Iterable[F], segment: Segment, window: Window | None = None) -> list[F]:
    """The facts that count in the segment (and, if given, fall in the window)."""
    return [f for f in facts if f.counts_in(segment) and (window is None or window.contains(f.day))]


def _sum(values: Iterable[Decimal]) -> Decimal:
    return money.money_sum(values)


def _new(bookings: Iterable[_Booking]) -> list[_Booking]:
    return [b for b in bookings if b.kind == "new"]


class _Points:
    def __init__(self, as_of: dt.date) -> None:
        self.as_of = as_of
        self.points: list[MetricPoint] = []

    def plain(self, metric: str, window: str, segment: Segment, value: Decimal) -> None:
        origin, channel = _labels(segment)
        self.points.append(MetricPoint(metric, window, origin, channel, value, self.as_of))

    def quotient(
        self, metric: str, window: str, segment: Segment, numerator: Decimal, denominator: Decimal
    ) -> None:
        origin, channel = _labels(segment)
        self.points.append(
            MetricPoint(
                metric,
                window,
                origin,
                channel,
                ratio(numerator, denominator),
                self.as_of,
                numerator,
                denominator,
            )
        )


def _labels(segment: Segment) -> tuple[str, str]:
    dim, value = segment
    if dim == "origin":
        return value, "all"
    if dim == "channel":
        return "all", value
    return "all", "all"


def _funnel_segments(facts: _Facts) -> list[Segment]:
    """All, plus every origin and channel a lead, conversion or booking is attributed to."""
    found: set[Segment] = {ALL}
    for fact in [*facts.leads, *facts.conversions, *facts.bookings]:
        found |= {("origin", fact.origin), ("channel", fact.channel)}
    return sorted(found)


def _spend_segments(facts: _Facts) -> list[Segment]:
    """All, plus every channel with money spent on it or a new customer attributed to it."""
    found: set[Segment] = {ALL}
    found |= {("channel", s.channel) for s in facts.spends if s.amount != 0}
    found |= {("channel", b.channel) for b in _new(facts.bookings)}
    return sorted(found)


def _window_points(out: _Points, facts: _Facts, window: Window) -> None:
    name = window.name
    leads_in = _in(facts.leads, ALL, window)
    conversions_in = _in(facts.conversions, ALL, window)
    bookings_in = _in(facts.bookings, ALL, window)
    spends_in = _in(facts.spends, ALL, window)
    for seg in _funnel_segments(facts):
        leads, bookings = _in(leads_in, seg), _in(bookings_in, seg)
        new = _new(bookings)
        lead_count = Decimal(len(leads))
        conversions = Decimal(len(_in(conversions_in, seg)))
        out.plain("leads", name, seg, lead_count)
        out.plain("conversions", name, seg, conversions)
        out.plain("lead_value", name, seg, _sum(lead.value for lead in leads))
        out.quotient("conversion_rate", name, seg, conversions, lead_count)
        out.plain("bookings", name, seg, Decimal(len(bookings)))
        out.plain("bookings_tcv", name, seg, _sum(b.tcv for b in bookings))
        out.quotient(
            "bookings_acv", name, seg, _sum(b.acv for b in bookings), Decimal(len(bookings))
        )
        out.plain("new_customers", name, seg, Decimal(len(new)))
        out.quotient("new_acv", name, seg, _sum(b.acv for b in new), Decimal(len(new)))

    marketing_new = _new(_in(bookings_in, MARKETING))
    marketing_acv = _sum(b.acv for b in marketing_new)
    out.quotient("marketing_acv", name, ALL, marketing_acv, Decimal(len(marketing_new)))
    marketing_leads = Decimal(len(_in(leads_in, MARKETING)))
    out.quotient("marketing_acv_per_lead", name, ALL, marketing_acv, marketing_leads)

    for seg in _spend_segments(facts):
        spend = _sum(s.amount for s in _in(spends_in, seg))
        new = _new(_in(bookings_in, seg))
        new_acv = _sum(b.acv for b in new)
        out.plain("spend", name, seg, spend)
        out.quotient("cac", name, seg, spend, Decimal(len(new)))
        out.quotient("roas", name, seg, new_acv, spend)
        payback_numerator = money.MONEY_CONTEXT.multiply(spend, money.MONTHS_PER_YEAR)
        out.quotient("cac_payback_months", name, seg, payback_numerator, new_acv)


def _accounts_on(terms: Iterable[_Term], day: dt.date) -> set[str]:
    return {t.account_id for t in terms if t.active_on(day)}


def _book_points(out: _Points, facts: _Facts, windows: list[Window]) -> None:
    terms = facts.terms
    for window in windows:
        started = [t for t in terms if window.contains(t.start_date)]
        lost = [
            t
            for t in terms
            if t.churned and t.end_date > t.start_date and window.contains(t.end_date)
        ]
        out.plain("arr_new", window.name, ALL, _sum(t.arr for t in started if t.kind == "new"))
        out.plain(
            "arr_expansion",
            window.name,
            ALL,
            _sum(t.arr for t in started if t.kind == "expansion"),
        )
        out.plain("arr_churned", window.name, ALL, _sum(t.arr for t in lost))

    active = [t for t in terms if t.active_on(out.as_of)]
    arr = _sum(t.arr for t in active)
    out.plain("arr", POINT_WINDOW, ALL, arr)
    out.plain("active_contracts", POINT_WINDOW, ALL, Decimal(len(active)))
    out.plain("active_customers", POINT_WINDOW, ALL, Decimal(len(_accounts_on(terms, out.as_of))))
    out.quotient("book_acv", POINT_WINDOW, ALL, arr, Decimal(len(active)))

    year = rolling(out.as_of, 365)
    active_first = _accounts_on(terms, year.first_day)
    churned_in_year = {t.account_id for t in terms if t.churned and year.contains(t.end_date)}
    lost_accounts = (active_first - _accounts_on(terms, year.last_day)) & churned_in_year
    churned, active_before = Decimal(len(lost_accounts)), Decimal(len(active_first))
    out.quotient("customer_churn_rate", POINT_WINDOW, ALL, churned, active_before)

    new_in_year = _new(_in(facts.bookings, ALL, year))
    mean_new_acv = ratio(_sum(b.acv for b in new_in_year), Decimal(len(new_in_year)))
    churn_rate = ratio(churned, active_before)
    if mean_new_acv is None or churn_rate is None:
        out.quotient("ltv", POINT_WINDOW, ALL, Decimal(0), Decimal(0))
    else:
        out.quotient("ltv", POINT_WINDOW, ALL, mean_new_acv, churn_rate)


def compute_oracle(
    events: Sequence[Event], as_of: dt.date, policy: MetricPolicy
) -> list[MetricPoint]:
    """Every metric point as of ``as_of``, from scratch, for the given events.

    The first of several events with one ``event_id`` counts. Every event is used,
    however late: drop late ones before calling this. The input order is the ledger's
    application order: past the cap on distinct channels (``policy.max_channels``, no
    allowlist) it decides which channels keep their own label; otherwise it is irrelevant.
    """
    facts = _Facts(events, policy)
    out = _Points(as_of)
    windows = windows_ending(as_of, policy.window_days)
    for window in windows:
        _window_points(out, facts, window)
    _book_points(out, facts, windows)
    return out.points
