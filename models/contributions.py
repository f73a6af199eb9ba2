"""What each fact adds to the daily buckets: contributions per (metric, segment, day).

Shared by the ledger (models.ledger), which keeps every entity in one place, and the
entity state (models.entities), which keeps each entity under its own key and sends
the changes of its contributions on to where the buckets are summed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from decimal import Decimal

from models import money
from models.buckets import segments_of
from models.events import ContractSigned, Event, LeadCreated, SpendRecorded
from models.facts import ContractFact, ConversionFact, LeadFact

Contribution = tuple[str, tuple[str, str], dt.date, Decimal]
BucketDay = tuple[str, tuple[str, str], dt.date]

_ZERO = Decimal(0)


def summed(contributions: Iterable[Contribution]) -> dict[BucketDay, Decimal]:
    """Contributions added up per (metric, segment, day)."""
    sums: dict[BucketDay, Decimal] = {}
    for metric, segment, day, amount in contributions:
        key = (metric, segment, day)
        sums[key] = money.add(sums.get(key, _ZERO), amount)
    return sums


def changes(
    before: dict[BucketDay, Decimal], after: dict[BucketDay, Decimal]
) -> Iterator[tuple[BucketDay, Decimal]]:
    """What turns the sums ``before`` into ``after``: each non-zero difference."""
    for key in before.keys() | after.keys():
        change = money.MONEY_CONTEXT.subtract(after.get(key, _ZERO), before.get(key, _ZERO))
        if change:
            yield key, change


def sender_channel(event: Event) -> str | None:
    """The channel a sender wrote on the event, if any (never ``unknown`` by default)."""
    if isinstance(event, LeadCreated | SpendRecorded | ContractSigned):
        return event.data.channel
    return None


def lead_contributions(lead: LeadFact) -> Iterator[Contribution]:
    for segment in segments_of(lead.origin, lead.channel):
        yield "leads", segment, lead.day, Decimal(1)
        if lead.estimated_value is not None:
            yield "lead_value", segment, lead.day, lead.estimated_value


def conversion_contributions(
    conversion: ConversionFact, attribution: tuple[str, str]
) -> Iterator[Contribution]:
    for segment in segments_of(*attribution):
        yield "conversions", segment, conversion.day, Decimal(1)


def contract_contributions(
    contract: ContractFact, attribution: tuple[str, str]
) -> Iterator[Contribution]:
    day = contract.day
    for segment in segments_of(*attribution):
        yield "bookings", segment, day, Decimal(1)
        yield "bookings_acv", segment, day, contract.acv
        yield "bookings_tcv", segment, day, contract.tcv
        if contract.kind == "new":
            yield "new_customers", segment, day, Decimal(1)
            yield "new_acv", segment, day, contract.acv
