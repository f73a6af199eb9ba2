"""What the ledger keeps of each accepted event: small slotted records, not the events.

The ledger keeps every lead, conversion, contract and churn for restatement, so its
memory grows with each one it holds. A parsed event carries two pydantic models, their
field-set bookkeeping and the raw fields; a fact keeps only what restatement and the book
read, with a contract's values already converted to the reporting currency.
(bench/README.md has the memory measured before and after.)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from models.book import BookedContract, Churn

Rank = tuple[dt.datetime, str]


@dataclass(frozen=True, slots=True)
class _Fact:
    event_id: str
    occurred_at: dt.datetime
    day: dt.date  # the UTC day of occurred_at

    @property
    def rank(self) -> Rank:
        """Which of several events for one entity represents it: the earliest, then by id."""
        return (self.occurred_at, self.event_id)


@dataclass(frozen=True, slots=True)
class LeadFact(_Fact):
    lead_id: str
    origin: str
    channel: str
    estimated_value: Decimal | None  # quantized


@dataclass(frozen=True, slots=True)
class ConversionFact(_Fact):
    lead_id: str


@dataclass(frozen=True, slots=True)
class ContractFact(_Fact):
    contract_id: str
    account_id: str
    lead_id: str | None
    origin: str | None  # from the contract itself; None: take it from the lead
    channel: str | None
    kind: str
    start_date: dt.date
    term_months: int
    acv: Decimal  # in the reporting currency, by the ledger's policy
    tcv: Decimal
    arr: Decimal

    def booked(self) -> BookedContract:
        return BookedContract(
            self.contract_id, self.account_id, self.kind, self.start_date, self.term_months,
            self.arr,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ChurnFact(_Fact):
    churn: Churn
