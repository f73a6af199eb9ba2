"""What an event must be for the ledger to hold it, whatever the ledger holds already.

Both the id gate (models.id_gate), which remembers an event's id only if the ledger
downstream can hold the event, and the ledger itself check an event's values with
:func:`check_values`, so the two never disagree on which events are invalid; the
digest an id is remembered with is computed once, where the id is remembered.
"""

from __future__ import annotations

from decimal import Decimal

from models import money
from models.errors import FieldProblem, InvalidEventError
from models.events import (
    ContractSigned,
    CustomerChurned,
    Event,
    LeadCreated,
    SpendRecorded,
    canonical_digest,
)
from models.limits import MAX_INSTANT, MIN_INSTANT
from models.policy import MetricPolicy
from models.windows import add_months

# what computing an event's values may raise on a value the ledger cannot hold
COMPUTE_ERRORS = (ArithmeticError, ValueError, TypeError, AttributeError)


def cannot_hold(field: str, error: Exception) -> InvalidEventError:
    """An error computing what an event implies, as a problem with ``field``."""
    reason = f"the ledger cannot hold this value: {type(error).__name__}: {error}"
    return InvalidEventError([FieldProblem(field, reason)])


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


def _rate(currency: str | None, policy: MetricPolicy) -> Decimal:
    rate = policy.rate_for(currency)
    if rate is None:
        raise InvalidEventError([FieldProblem("data.currency", "no exchange rate")])
    return rate


def estimated_value(event: LeadCreated) -> Decimal | None:
    """The lead's estimated value, to the cent, if it has one."""
    value = event.data.estimated_value
    return None if value is None else money.quantize_money(value)


def contract_values(
    event: ContractSigned, policy: MetricPolicy
) -> tuple[Decimal, Decimal, Decimal]:
    """ACV, TCV and ARR contribution of a contract, in the reporting currency."""
    data = event.data
    rate = _rate(data.currency, policy)
    recurring = money.convert(data.recurring_value, rate)
    fees = money.convert(data.one_time_fees, rate)
    acv = money.acv(
        recurring,
        data.term_months,
        fees,
        include_one_time_fees=policy.include_one_time_fees,
        sub_year=policy.sub_year,
    )
    tcv = money.tcv(recurring, fees)
    arr = money.arr_contribution(recurring, data.term_months)
    return acv, tcv, arr


def spend_amount(event: SpendRecorded, policy: MetricPolicy) -> Decimal:
    """The spend, in the reporting currency."""
    return money.convert(event.data.amount, _rate(event.data.currency, policy))


def check_holdable(event: Event, policy: MetricPolicy) -> bytes:
    """The event's digest (models.events.canonical_digest), if the ledger can hold it
    (:func:`check_values`, then the digest)."""
    check_values(event, policy)
    return digest_of(event)


def digest_of(event: Event) -> bytes:
    """The event's digest; a failure to compute it is a problem with ``<event>``."""
    try:
        return canonical_digest(event)
    except COMPUTE_ERRORS as error:
        raise cannot_hold("<event>", error) from error


def check_values(event: Event, policy: MetricPolicy) -> None:
    """Raise InvalidEventError, on the field being computed, for an event no ledger can
    hold: money in a currency with no rate, an ``occurred_at`` outside the instants
    held or without an offset, or a value that cannot be computed (an estimated value,
    a contract's values or term end, an effective date, a spend's conversion)."""
    check_currency(event, policy)
    field = "occurred_at"
    try:
        occurred_at = event.occurred_at
        if not MIN_INSTANT <= occurred_at <= MAX_INSTANT:
            raise ValueError(f"must be between {MIN_INSTANT} and {MAX_INSTANT}")
        _ = event.occurred_day
        match event:
            case LeadCreated():
                field = "data.estimated_value"
                estimated_value(event)
            case ContractSigned():
                field = "data.recurring_value"
                contract_values(event, policy)
                field = "data.term_months"
                add_months(event.data.start_date, event.data.term_months)
            case CustomerChurned():
                field = "data.effective_date"
                _ = event.effective_date
            case SpendRecorded():
                field = "data.amount"
                spend_amount(event, policy)
    except COMPUTE_ERRORS as error:
        raise cannot_hold(field, error) from error
