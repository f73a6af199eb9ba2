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
from models.facts import ChurnFact, ContractFact, ConversionFact, LeadFact, Rank
from models.policy import MetricPolicy
from models.state import StateDelta

Contribution = tuple[str, tuple[str, str], dt.date, Decimal]
BucketDay = tuple[str, tuple[str, str], dt.date]


class Outcome(enum.Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    LATE = "late"


F = TypeVar("F", LeadFact, ConversionFact, ContractFact)


def _rank(fact: LeadFact | ConversionFact | ContractFact | ChurnFact) -> Rank:
    return fact.rank


def _winner(candidates: list[F]) -> F | None:
    return min(candidates, key=_rank) if candidates else None


_ZERO = Decimal(0)


def _summed(contributions: Iterable[Contribution]) -> dict[BucketDay, Decimal]:
    """Contributions added up per (metric, segment, day)."""
    sums: dict[BucketDay, Decimal] = {}
    for metric, segment, day, amount in contributions:
        key = (metric, segment, day)
        sums[key] = sums.get(key, _ZERO) + amount
    return sums


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
        self._lateness_mark: dt.datetime | None = None  # min of the marks, kept up to date
        self._seen: set[str] = set()
        self._leads: dict[str, list[LeadFact]] = {}
        self._conversions: dict[str, list[ConversionFact]] = {}
        self._contracts: dict[str, list[ContractFact]] = {}
        self._contracts_by_lead: dict[str, set[str]] = {}
        self._churns: list[ChurnFact] = []
        self._touched_contracts: set[str] = set()
        self._booked: dict[str, BookedContract] = {}
        self._book: list[BookEntry] | None = None  # cached until a contract or churn changes
        self._new_churns: list[ChurnFact] = []

    # -- intake -----------------------------------------------------------------

    def lateness_mark(self) -> dt.datetime | None:
        """The slowest source's watermark; None until every source has been seen."""
        return self._lateness_mark

    def _advance_source(self, source: str, occurred_at: dt.datetime) -> None:
        previous = self._source_marks.get(source)
        if previous is not None and occurred_at <= previous:
            return
        self._source_marks[source] = occurred_at
        if previous is None or previous == self._lateness_mark:  # the minimum may have moved
            marks = [self._source_marks.get(name) for name in self.sources]
            known = [mark for mark in marks if mark is not None]
            self._lateness_mark = min(known) if len(known) == len(marks) else None

    def is_late(self, event: Event) -> bool:
        mark = self._lateness_mark
        return mark is not None and event.occurred_at < mark - self.policy.lateness

    def apply(self, event: Event, source: str = "") -> Outcome:
        """Apply one validated event, unless it is a duplicate or later than allowed."""
        if event.event_id in self._seen:
            return Outcome.DUPLICATE
        if self.is_late(event):
            return Outcome.LATE
        self.restore(event)
        self._advance_source(source, event.occurred_at)
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
                lead = self._lead_fact(event)
                self._change_lead(
                    lead.lead_id, lambda: self._leads.setdefault(lead.lead_id, []).append(lead)
                )
            case LeadConverted():
                conversion = ConversionFact(
                    event.event_id, event.occurred_at, event.occurred_day, event.data.lead_id
                )
                self._change_lead(
                    conversion.lead_id,
                    lambda: self._conversions.setdefault(conversion.lead_id, []).append(conversion),
                )
            case ContractSigned():
                self._add_contract(self._contract_fact(event))
            case CustomerChurned():
                data = event.data
                churn = ChurnFact(
                    event.event_id, event.occurred_at, event.occurred_day,
                    Churn(data.account_id, data.contract_id, event.effective_date),
                )  # fmt: skip
                self._churns.append(churn)
                self._new_churns.append(churn)
                self._book = None
            case SpendRecorded():
                self._add(self._spend_contributions(event), +1)

    def _lead_fact(self, event: LeadCreated) -> LeadFact:
        data = event.data
        value = data.estimated_value
        return LeadFact(
            event.event_id, event.occurred_at, event.occurred_day, data.lead_id, data.origin,
            data.channel, None if value is None else money.quantize_money(value),
        )  # fmt: skip

    def _contract_fact(self, event: ContractSigned) -> ContractFact:
        data = event.data
        acv, tcv, arr = self.contract_values(event)
        return ContractFact(
            event.event_id, event.occurred_at, event.occurred_day, data.contract_id,
            data.account_id, data.lead_id, data.origin, data.channel, data.kind,
            data.start_date, data.term_months, acv, tcv, arr,
        )  # fmt: skip

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
            if contract is not None and contract.lead_id == lead_id:
                found.extend(self._contract_contributions(contract))
        return found

    def _change_lead(self, lead_id: str, mutate: Callable[[], None]) -> None:
        """Restate what a lead and everything attributed from it add: only what changed."""
        before = _summed(self._lead_group(lead_id))
        mutate()
        after = _summed(self._lead_group(lead_id))
        for key in before.keys() | after.keys():
            change = after.get(key, _ZERO) - before.get(key, _ZERO)
            if change:
                metric, segment, day = key
                self.buckets.add(metric, segment, day, change)

    def _add_contract(self, fact: ContractFact) -> None:
        contract_id = fact.contract_id
        self._touched_contracts.add(contract_id)
        old = _winner(self._contracts.get(contract_id, []))
        if old is not None:
            self._add(self._contract_contributions(old), -1)
        self._contracts.setdefault(contract_id, []).append(fact)
        if fact.lead_id is not None:
            self._contracts_by_lead.setdefault(fact.lead_id, set()).add(contract_id)
        new = _winner(self._contracts[contract_id])
        assert new is not None
        self._add(self._contract_contributions(new), +1)
        if new is not old:
            self._booked[contract_id] = new.booked()
            self._book = None

    # -- what each fact adds ----------------------------------------------------

    def lead_attribution(self, lead_id: str | None) -> tuple[str, str]:
        lead = _winner(self._leads.get(lead_id, [])) if lead_id is not None else None
        if lead is None:
            return UNKNOWN, UNKNOWN
        return lead.origin, lead.channel

    def contract_attribution(self, contract: ContractSigned) -> tuple[str, str]:
        data = contract.data
        return self._attribution(data.lead_id, data.origin, data.channel)

    def _attribution(
        self, lead_id: str | None, origin: str | None, channel: str | None
    ) -> tuple[str, str]:
        """The contract's own origin and channel, else its lead's, else unknown."""
        lead_origin, lead_channel = self.lead_attribution(lead_id)
        return origin or lead_origin, channel or lead_channel

    def _lead_contributions(self, lead_id: str) -> Iterator[Contribution]:
        lead = _winner(self._leads.get(lead_id, []))
        if lead is None:
            return
        for segment in segments_of(lead.origin, lead.channel):
            yield "leads", segment, lead.day, Decimal(1)
            if lead.estimated_value is not None:
                yield "lead_value", segment, lead.day, lead.estimated_value

    def _conversion_contributions(self, conversion: ConversionFact) -> Iterator[Contribution]:
        origin, channel = self.lead_attribution(conversion.lead_id)
        for segment in segments_of(origin, channel):
            yield "conversions", segment, conversion.day, Decimal(1)

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

    def _contract_contributions(self, contract: ContractFact) -> Iterator[Contribution]:
        day = contract.day
        attribution = self._attribution(contract.lead_id, contract.origin, contract.channel)
        for segment in segments_of(*attribution):
            yield "bookings", segment, day, Decimal(1)
            yield "bookings_acv", segment, day, contract.acv
            yield "bookings_tcv", segment, day, contract.tcv
            if contract.kind == "new":
                yield "new_customers", segment, day, Decimal(1)
                yield "new_acv", segment, day, contract.acv

    def _spend_contributions(self, event: SpendRecorded) -> Iterator[Contribution]:
        rate = self.policy.rate_for(event.data.currency)
        if rate is None:
            raise InvalidEventError([FieldProblem("data.currency", "no exchange rate")])
        amount = money.convert(event.data.amount, rate)
        for segment in (ALL, ("channel", event.data.channel)):
            yield "spend", segment, event.occurred_day, amount

    # -- the book -----------------------------------------------------------------

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
        return [fact.churn for fact in sorted(self._churns, key=_rank)]

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
                churns={fact.event_id: fact.churn for fact in self._churns},
            )
        delta = StateDelta(
            buckets=self.buckets.take_touched(),
            contracts={cid: self.booked_contract(cid) for cid in self._touched_contracts},
            churns={fact.event_id: fact.churn for fact in self._new_churns},
        )
        self._touched_contracts.clear()
        self._new_churns.clear()
        return delta

    def prune(self, today: dt.date) -> None:
        """Drop daily buckets past the retention."""
        self.buckets.prune(today - dt.timedelta(days=self.policy.retention_days))
