"""The public event contract (docs/metrics.md, "Event contract") as strict pydantic models.

Money is ``Decimal``: JSON numbers are parsed as decimals by :func:`parse_event_bytes`,
never as floats.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from decimal import ROUND_HALF_EVEN, Context, Decimal
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
    ValidationInfo,
    field_validator,
)

from models.errors import FieldProblem, InvalidEventError
from models.limits import (
    MAX_DATE,
    MAX_INSTANT,
    MAX_MONEY,
    MAX_TERM_MONTHS,
    MIN_DATE,
    MIN_INSTANT,
    MONEY_DECIMALS,
    decimal_places,
)
from models.windows import add_months

Origin = Literal["marketing", "sales", "partner", "other"]
ContractKind = Literal["new", "renewal", "expansion"]
Id = Annotated[str, StringConstraints(min_length=1, max_length=128)]
ALL_LABEL = "all"  # the label of the unsegmented series
OVERFLOW_CHANNEL = "overflow"  # the label of every channel past the cap (models.channels)
RESERVED_LABELS = frozenset({ALL_LABEL, OVERFLOW_CHANNEL})
_RESERVED_FOR = {
    ALL_LABEL: "the total over all segments",
    OVERFLOW_CHANNEL: "the channels past the cap on distinct channels",
}


def _not_reserved(value: str) -> str:
    if value in RESERVED_LABELS:
        raise ValueError(f"{value!r} is reserved for {_RESERVED_FOR[value]}")
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


def _date_in_range(value: dt.date) -> dt.date:
    if not MIN_DATE <= value <= MAX_DATE:
        raise ValueError(f"must be between {MIN_DATE} and {MAX_DATE}")
    return value


def _instant_in_range(value: dt.datetime) -> dt.datetime:
    try:
        in_range = MIN_INSTANT <= value.astimezone(dt.UTC) <= MAX_INSTANT
    except OverflowError:  # its offset takes it past year 1 or 9999
        in_range = False
    if not in_range:
        raise ValueError(f"must be between {MIN_DATE} and {MAX_DATE} (UTC, both days included)")
    return value


def _money_scale(value: Decimal) -> Decimal:
    if decimal_places(value) > MONEY_DECIMALS:
        raise ValueError(f"must have at most {MONEY_DECIMALS} decimal places")
    return value


Label = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_]+$", to_lower=True),
    AfterValidator(_not_reserved),
]
Date = Annotated[dt.date, _text_only("a date YYYY-MM-DD"), AfterValidator(_date_in_range)]
Timestamp = Annotated[
    AwareDatetime,
    _text_only("an RFC 3339 timestamp with offset"),
    AfterValidator(_instant_in_range),
]
Months = Annotated[int, BeforeValidator(_whole_number), Field(ge=1, le=MAX_TERM_MONTHS)]
Money = Annotated[
    Decimal, Field(ge=0, le=MAX_MONEY, allow_inf_nan=False), AfterValidator(_money_scale)
]
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

    @field_validator("term_months")
    @classmethod
    def _term_ends_in_range(cls, term_months: int, info: ValidationInfo) -> int:
        start_date = info.data.get("start_date")  # absent if it was invalid itself
        if start_date is not None:
            term_end = add_months(start_date, term_months)
            if term_end > MAX_DATE:
                raise ValueError(
                    f"start_date {start_date} + {term_months} months ends on {term_end}, "
                    f"after the last allowed date {MAX_DATE}"
                )
        return term_months


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
    """Decode JSON with every non-integer number as an exact ``Decimal``; anything that
    is not JSON an event could be, nesting too deep for the decoder included, raises
    InvalidEventError."""
    try:
        return json.loads(body, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidEventError([FieldProblem("<body>", f"not valid JSON: {error}")]) from None
    except RecursionError:
        raise InvalidEventError(
            [FieldProblem("<body>", "not valid JSON: nested too deeply")]
        ) from None


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


def check_not_future(event: Event, now: dt.datetime, max_future: dt.timedelta) -> None:
    """Raise InvalidEventError if ``occurred_at`` is more than ``max_future`` after ``now``.

    ``now`` is the wall clock at intake (timezone-aware), passed in: this reads no clock."""
    if event.occurred_at > now + max_future:
        seconds = int(max_future.total_seconds())
        message = (
            f"{event.occurred_at.isoformat()} is more than {seconds} s ahead of the wall clock "
            f"at intake ({now.astimezone(dt.UTC).isoformat()})"
        )
        raise InvalidEventError([FieldProblem("occurred_at", message)])


_DIGEST_SCALE = Decimal(1).scaleb(-MONEY_DECIMALS)
_DIGEST_CONTEXT = Context(prec=60, rounding=ROUND_HALF_EVEN)


_DATA_FIELDS: dict[type[BaseModel], tuple[str, ...]] = {}


def _money_text(value: Decimal) -> str:
    """One spelling per amount: 1E+3, 1000 and 1000.00 are all 1000.000000; -0 is 0."""
    amount = value.copy_abs() if value.is_zero() else value
    return format(amount.quantize(_DIGEST_SCALE, context=_DIGEST_CONTEXT), "f")


def canonical_digest(event: Event) -> bytes:
    """8 bytes that identify what an event says, for telling a re-send from a conflict.

    Over every contract field, ``source`` included, after normalizing what the contract
    treats as the same: ``occurred_at`` as a UTC instant, money at 6 decimals, an absent
    optional field and a null one, and defaults (``kind`` "new", ``one_time_fees`` 0)
    written out or left to apply. Channels are already folded to lower case."""
    data = event.data
    names = _DATA_FIELDS.get(type(data))
    if names is None:
        names = _DATA_FIELDS[type(data)] = tuple(type(data).model_fields)
    # by position: the type fixes which field each is; None for absent or null
    values: list[Any] = [event.type, event.event_id, event.source]
    values.append(event.occurred_at.astimezone(dt.UTC))
    for name in names:
        value = getattr(data, name)
        values.append(_money_text(value) if isinstance(value, Decimal) else value)
    # repr is unambiguous (texts quoted and escaped, dates spelt out); digests are only
    # compared within one process, as a rebuild recomputes them
    return hashlib.blake2b(repr(values).encode(), digest_size=8).digest()
