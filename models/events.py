"""The public event contract (see README, "Event contract") as strict pydantic models.

Money is ``Decimal``: JSON numbers are parsed as decimals by :func:`parse_event_bytes`,
never as floats.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

from models.errors import FieldProblem, InvalidEventError

Origin = Literal["marketing", "sales", "partner", "other"]
ContractKind = Literal["new", "renewal", "expansion"]
Id = Annotated[str, StringConstraints(min_length=1, max_length=128)]
RESERVED_LABELS = frozenset({"all"})  # "all" is the label of the unsegmented series


def _not_reserved(value: str) -> str:
    if value in RESERVED_LABELS:
        raise ValueError(f"{value!r} is reserved for the total over all segments")
    return value


def _text_only(what: str) -> Any:
    """Reject JSON numbers and booleans where the contract wants a text date or time."""

    def check(value: Any) -> Any:
        if isinstance(value, bool | int | float | Decimal):
            raise ValueError(f"must be {what} as a string, not a number")
        return value

    return BeforeValidator(check)


def _whole_number(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a whole number, not a boolean")
    if isinstance(value, Decimal | float) and value != int(value):
        raise ValueError("must be a whole number")
    return int(value) if isinstance(value, Decimal | float) else value


Label = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_]+$", to_lower=True),
    AfterValidator(_not_reserved),
]
Date = Annotated[dt.date, _text_only("a date YYYY-MM-DD")]
Timestamp = Annotated[AwareDatetime, _text_only("an RFC 3339 timestamp with offset")]
Months = Annotated[int, BeforeValidator(_whole_number), Field(ge=1, le=1200)]
Money = Annotated[Decimal, Field(ge=0, allow_inf_nan=False, max_digits=28)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]

ORIGINS: tuple[str, ...] = ("marketing", "sales", "partner", "other")
UNKNOWN = "unknown"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LeadCreatedData(_Strict):
    lead_id: Id
    channel: Label
    origin: Origin
    campaign: Annotated[str, StringConstraints(max_length=256)] | None = None
    estimated_value: Money | None = None


class LeadConvertedData(_Strict):
    lead_id: Id
    account_id: Id | None = None


class ContractSignedData(_Strict):
    contract_id: Id
    account_id: Id
    lead_id: Id | None = None
    origin: Origin | None = None
    channel: Label | None = None
    kind: ContractKind = "new"
    start_date: Date
    term_months: Months
    recurring_value: Money
    one_time_fees: Money = Decimal(0)
    currency: Currency | None = None


class CustomerChurnedData(_Strict):
    account_id: Id
    contract_id: Id | None = None
    effective_date: Date | None = None


class SpendRecordedData(_Strict):
    channel: Label
    amount: Money
    currency: Currency


class _Envelope(_Strict):
    event_id: Id
    occurred_at: Timestamp
    source: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None

    @property
    def occurred_day(self) -> dt.date:
        """The UTC calendar day of ``occurred_at``: the day bucket it counts in."""
        return self.occurred_at.astimezone(dt.UTC).date()


class LeadCreated(_Envelope):
    type: Literal["lead.created"]
    data: LeadCreatedData


class LeadConverted(_Envelope):
    type: Literal["lead.converted"]
    data: LeadConvertedData


class ContractSigned(_Envelope):
    type: Literal["contract.signed"]
    data: ContractSignedData


class CustomerChurned(_Envelope):
    type: Literal["customer.churned"]
    data: CustomerChurnedData

    @property
    def effective_date(self) -> dt.date:
        return self.data.effective_date or self.occurred_day


class SpendRecorded(_Envelope):
    type: Literal["spend.recorded"]
    data: SpendRecordedData


Event = Annotated[
    LeadCreated | LeadConverted | ContractSigned | CustomerChurned | SpendRecorded,
    Field(discriminator="type"),
]
EVENT_TYPES: tuple[str, ...] = (
    "lead.created",
    "lead.converted",
    "contract.signed",
    "customer.churned",
    "spend.recorded",
)
_EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def _problems(error: ValidationError) -> list[FieldProblem]:
    problems = []
    for item in error.errors(include_url=False):
        loc = [str(part) for part in item["loc"]]
        # the discriminator adds the tag ("contract.signed") to the path: drop it
        if loc and loc[0] in EVENT_TYPES:
            loc = loc[1:]
        problems.append(FieldProblem(".".join(loc) or "<event>", item["msg"]))
    return problems


def parse_event(raw: Any) -> Event:
    """Validate one decoded JSON value against the contract, or raise InvalidEventError."""
    if not isinstance(raw, dict):
        raise InvalidEventError([FieldProblem("<event>", "an event must be a JSON object")])
    if "type" not in raw:
        raise InvalidEventError([FieldProblem("type", "Field required")])
    if raw["type"] not in EVENT_TYPES:
        allowed = ", ".join(EVENT_TYPES)
        raise InvalidEventError(
            [FieldProblem("type", f"unknown event type {raw['type']!r}; expected one of {allowed}")]
        )
    try:
        return _EVENT_ADAPTER.validate_python(raw)
    except ValidationError as error:
        raise InvalidEventError(_problems(error)) from None


def decode_json(body: bytes | str) -> Any:
    """Decode JSON with every non-integer number as an exact ``Decimal``."""
    try:
        return json.loads(body, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidEventError([FieldProblem("<body>", f"not valid JSON: {error}")]) from None


def parse_event_bytes(body: bytes | str) -> Event:
    """Decode and validate one JSON event."""
    return parse_event(decode_json(body))


def parse_canonical_event(body: bytes | str) -> Event:
    """Validate an event in the canonical form :func:`event_to_json` writes.

    Faster than :func:`parse_event_bytes`, and exact only because canonical money is
    a JSON string: never use it on outside input, where amounts may be JSON numbers.
    """
    try:
        return _EVENT_ADAPTER.validate_json(body)
    except ValidationError as error:
        if any(item["type"] == "json_invalid" for item in error.errors()):
            message = error.errors()[0]["msg"]
            raise InvalidEventError([FieldProblem("<body>", message)]) from None
        raise InvalidEventError(_problems(error)) from None


def event_to_json(event: Event) -> str:
    """The canonical JSON form of an event (decimals as strings, no None fields)."""
    return event.model_dump_json(exclude_none=True)


def partition_key(event: Event) -> str:
    """The Kafka key of an event: the id of the entity it is about."""
    match event:
        case LeadCreated() | LeadConverted():
            return f"lead:{event.data.lead_id}"
        case ContractSigned():
            return f"account:{event.data.account_id}"
        case CustomerChurned():
            return f"account:{event.data.account_id}"
        case SpendRecorded():
            return f"channel:{event.data.channel}"
