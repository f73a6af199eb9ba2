"""The ledger: every accepted fact, deduplicated, and the daily buckets they add up to.

Order does not matter: an entity (a lead, its conversion, a contract) is represented
by the earliest of its events (by ``occurred_at``, then ``event_id``), and a fact
that depends on a lead is restated when the lead arrives or changes. The same set
of accepted events gives the same state whatever order they came in.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import TypeVar

from models import money
from models.book import BookedContract, BookEntry, Churn, build_book
from models.buckets import ALL, DailyBuckets, segments_of
from models.errors import FieldProblem, InvalidEventError
from models.events import (
    UNKNOWN,
    ContractSigned,
    CustomerChurned,
    Event,
    LeadConverted,
    LeadCreated,
    SpendRecorded,
)
from models.policy import MetricPolicy
from models.state import StateDelta

Contribution = tuple[str, tuple[str, str], dt.date, Decimal]


def _churn(event: CustomerChurned) -> Churn:
    return Churn(event.data.account_id, event.data.contract_id, event.effective_date)


class Outcome(enum.Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    LATE = "late"


def _rank(event: Event) -> tuple[dt.datetime, str]:
    return (event.occurred_at, event.event_id)


E = TypeVar("E", LeadCreated, LeadConverted, ContractSigned)


def _winner(candidates: list[E]) -> E | None:
    return min(candidates, key=_rank) if candidates else None


def check_currency(event: Event, policy: MetricPolicy) -> None:
    """Raise InvalidEventError if the event's money is in a currency with no rate."""
    currency: str | None = None
    if isinstance(event, ContractSigned | SpendRecorded):
        currency = event.data.currency
    if policy.rate_for(currency) is None:
        known = ", ".join(sorted({policy.reporting_currency, *policy.fx_rates}))
        raise InvalidEventError(
            [FieldProblem("data.currency", f"no exchange rate for {currency}; known: {known}")]
        )


class Ledger:
    """Accepted facts and their daily buckets. Pure: time is passed in."""

    def __init__(self, policy: MetricPolicy, sources: tuple[str, ...] = ("",)) -> None:
        """``sources``: the input partitions. Each keeps its own watermark, and an event is
        late only when it is older than the allowed lateness behind the slowest of them,
        so a backfill read from several partitions at different speeds loses nothing."""
        self.policy = policy
        self.buckets = DailyBuckets()
        self.watermark: dt.datetime | None = None  # the largest occurred_at: the clock
        self.sources = sources
        self._source_marks: dict[str, dt.datetime] = {}
        self._seen: set[str] = set()
        self._leads: dict[str, list[LeadCreated]] = {}
        self._conversions: dict[str, list[LeadConverted]] = {}
        self._contracts: dict[str, list[ContractSigned]] = {}
        self._contracts_by_lead: dict[str, set[str]] = {}
        self._churns: list[CustomerChurned] = []
        self._touched_contracts: set[str] = set()
        self._booked: dict[str, BookedContract] = {}
        self._book: list[BookEntry] | None = None  # cached until a contract or churn changes
        self._new_churns: list[CustomerChurned] = []

    # -- intake -----------------------------------------------------------------

    def lateness_mark(self) -> dt.datetime | None:
        """The slowest source's watermark; None until every source has been seen."""
        marks = [self._source_marks.get(source) for source in self.sources]
        if any(mark is None for mark in marks):
            return None
        return min(mark for mark in marks if mark is not None)

    def is_late(self, event: Event) -> bool:
        mark = self.lateness_mark()
        return mark is not None and event.occurred_at < mark - self.policy.lateness

    def apply(self, event: Event, source: str = "") -> Outcome:
        """Apply one validated event, unless it is a duplicate or later than allowed."""
        if event.event_id in self._seen:
            return Outcome.DUPLICATE
        if self.is_late(event):
            return Outcome.LATE
        self.restore(event)
        mark = self._source_marks.get(source)
        if mark is None or event.occurred_at > mark:
            self._source_marks[source] = event.occurred_at
        return Outcome.APPLIED

    def restore(self, event: Event) -> None:
        """Apply an event accepted before (recovery): no lateness check."""
        if event.event_id in self._seen:
            return
        check_currency(event, self.policy)  # before any state changes: a bad event leaves none
        self._seen.add(event.event_id)
        if self.watermark is None or event.occurred_at > self.watermark:
            self.watermark = event.occurred_at
        match event:
            case LeadCreated():
                self._change_lead(
                    event.data.lead_id,
                    lambda: self._leads.setdefault(event.data.lead_id, []).append(event),
                )
            case LeadConverted():
                self._change_lead(
                    event.data.lead_id,
                    lambda: self._conversions.setdefault(event.data.lead_id, []).append(event),
                )
            case ContractSigned():
                self._add_contract(event)
            case CustomerChurned():
                self._churns.append(event)
                self._new_churns.append(event)
                self._book = None
            case SpendRecorded():
                self._add(self._spend_contributions(event), +1)

    @property
    def accepted_count(self) -> int:
        return len(self._seen)

    # -- restatement ------------------------------------------------------------

    def _add(self, contributions: Iterable[Contribution], sign: int) -> None:
        for metric, segment, day, amount in contributions:
            self.buckets.add(metric, segment, day, amount * sign)

    def _lead_group(self, lead_id: str) -> list[Contribution]:
        found = list(self._lead_contributions(lead_id))
        conversion = _winner(self._conversions.get(lead_id, []))
        if conversion is not None:
            found.extend(self._conversion_contributions(conversion))
        for contract_id in sorted(self._contracts_by_lead.get(lead_id, set())):
            contract = _winner(self._contracts[contract_id])
            if contract is not None and contract.data.lead_id == lead_id:
                found.extend(self._contract_contributions(contract))
        return found

    def _change_lead(self, lead_id: str, mutate: Callable[[], None]) -> None:
        self._add(self._lead_group(lead_id), -1)
        mutate()
        self._add(self._lead_group(lead_id), +1)

    def _add_contract(self, event: ContractSigned) -> None:
        contract_id = event.data.contract_id
        self._touched_contracts.add(contract_id)
        old = _winner(self._contracts.get(contract_id, []))
        if old is not None:
            self._add(self._contract_contributions(old), -1)
        self._contracts.setdefault(contract_id, []).append(event)
        if event.data.lead_id is not None:
            self._contracts_by_lead.setdefault(event.data.lead_id, set()).add(contract_id)
        new = _winner(self._contracts[contract_id])
        assert new is not None
        self._add(self._contract_contributions(new), +1)
        if new is not old:
            self._booked[contract_id] = self._booked_from(new)
            self._book = None

    # -- what each fact adds ----------------------------------------------------

    def lead_attribution(self, lead_id: str | None) -> tuple[str, str]:
        lead = _winner(self._leads.get(lead_id, [])) if lead_id is not None else None
        if lead is None:
            return UNKNOWN, UNKNOWN
        return lead.data.origin, lead.data.channel

    def contract_attribution(self, contract: ContractSigned) -> tuple[str, str]:
        lead_origin, lead_channel = self.lead_attribution(contract.data.lead_id)
        return contract.data.origin or lead_origin, contract.data.channel or lead_channel

    def _lead_contributions(self, lead_id: str) -> Iterator[Contribution]:
        lead = _winner(self._leads.get(lead_id, []))
        if lead is None:
            return
        for segment in segments_of(lead.data.origin, lead.data.channel):
            yield "leads", segment, lead.occurred_day, Decimal(1)
            if lead.data.estimated_value is not None:
                value = money.quantize_money(lead.data.estimated_value)
                yield "lead_value", segment, lead.occurred_day, value

    def _conversion_contributions(self, event: LeadConverted) -> Iterator[Contribution]:
        origin, channel = self.lead_attribution(event.data.lead_id)
        for segment in segments_of(origin, channel):
            yield "conversions", segment, event.occurred_day, Decimal(1)

    def contract_values(self, event: ContractSigned) -> tuple[Decimal, Decimal, Decimal]:
        """ACV, TCV and ARR contribution of a contract, in the reporting currency."""
        data, policy = event.data, self.policy
        rate = policy.rate_for(data.currency)
        if rate is None:
            raise InvalidEventError([FieldProblem("data.currency", "no exchange rate")])
        recurring = money.convert(data.recurring_value, rate)
        fees = money.convert(data.one_time_fees, rate)
        acv = money.acv(
            recurring,
            data.term_months,
            fees,
            include_one_time_fees=policy.include_one_time_fees,
            sub_year=policy.sub_year,
        )
        return acv, money.tcv(recurring, fees), money.arr_contribution(recurring, data.term_months)

    def _contract_contributions(self, event: ContractSigned) -> Iterator[Contribution]:
        acv, tcv, _arr = self.contract_values(event)
        day = event.occurred_day
        for segment in segments_of(*self.contract_attribution(event)):
            yield "bookings", segment, day, Decimal(1)
            yield "bookings_acv", segment, day, acv
            yield "bookings_tcv", segment, day, tcv
            if event.data.kind == "new":
                yield "new_customers", segment, day, Decimal(1)
                yield "new_acv", segment, day, acv

    def _spend_contributions(self, event: SpendRecorded) -> Iterator[Contribution]:
        rate = self.policy.rate_for(event.data.currency)
        if rate is None:
            raise InvalidEventError([FieldProblem("data.currency", "no exchange rate")])
        amount = money.convert(event.data.amount, rate)
        for segment in (ALL, ("channel", event.data.channel)):
            yield "spend", segment, event.occurred_day, amount

    # -- the book -----------------------------------------------------------------

    def _booked_from(self, event: ContractSigned) -> BookedContract:
        _acv, _tcv, arr = self.contract_values(event)
        data = event.data
        return BookedContract(
            data.contract_id, data.account_id, data.kind, data.start_date, data.term_months, arr
        )

    def booked_contract(self, contract_id: str) -> BookedContract:
        return self._booked[contract_id]

    def booked_contracts(self) -> list[BookedContract]:
        return [self._booked[contract_id] for contract_id in sorted(self._booked)]

    def book_entries(self) -> list[BookEntry]:
        """The book (contracts with their end dates), kept until something changes it."""
        if self._book is None:
            self._book = build_book(self.booked_contracts(), self.churns())
        return self._book

    def churns(self) -> list[Churn]:
        return [_churn(event) for event in sorted(self._churns, key=_rank)]

    def take_delta(self, *, full: bool = False) -> StateDelta:
        """What changed since the last delta (everything, if ``full``), for a stored copy."""
        if full:
            self.buckets.take_touched()
            self._touched_contracts.clear()
            self._new_churns.clear()
            return StateDelta(
                full=True,
                buckets={
                    (key, day): amount
                    for key, days in self.buckets.as_dict().items()
                    for day, amount in days.items()
                },
                contracts={c.contract_id: c for c in self.booked_contracts()},
                churns={event.event_id: _churn(event) for event in self._churns},
            )
        delta = StateDelta(
            buckets=self.buckets.take_touched(),
            contracts={cid: self.booked_contract(cid) for cid in self._touched_contracts},
            churns={event.event_id: _churn(event) for event in self._new_churns},
        )
        self._touched_contracts.clear()
        self._new_churns.clear()
        return delta

    def prune(self, today: dt.date) -> None:
        """Drop daily buckets past the retention."""
        self.buckets.prune(today - dt.timedelta(days=self.policy.retention_days))
