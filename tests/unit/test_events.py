"""The public event contract: what parses, what is refused, and where the problem is."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.errors import InvalidEventError, RevpulseError
from models.events import (
    ContractSigned,
    CustomerChurned,
    LeadConverted,
    LeadCreated,
    SpendRecorded,
    canonical_digest,
    check_not_future,
    event_to_json,
    parse_canonical_event,
    parse_event,
    parse_event_bytes,
)
from models.limits import decimal_places
from streams.kafka.keys import partition_key

WHEN = "2024-03-01T10:00:00+02:00"

VALID: dict[str, dict[str, Any]] = {
    "lead.created": {
        "lead_id": "L1",
        "channel": "paid_search",
        "origin": "marketing",
        "campaign": "spring",
        "estimated_value": "1500.50",
    },
    "lead.converted": {"lead_id": "L1", "account_id": "A1"},
    "contract.signed": {
        "contract_id": "C1",
        "account_id": "A1",
        "lead_id": "L1",
        "kind": "expansion",
        "start_date": "2024-04-01",
        "term_months": 36,
        "recurring_value": "24000",
        "one_time_fees": "1500",
        "currency": "EUR",
    },
    "customer.churned": {"account_id": "A1", "contract_id": "C1", "effective_date": "2024-06-30"},
    "spend.recorded": {"channel": "organic", "amount": "99.99", "currency": "USD"},
}


def raw(event_type: str = "contract.signed", **data_changes: Any) -> dict[str, Any]:
    data = {**VALID[event_type], **data_changes}
    return {
        "event_id": "evt-1",
        "type": event_type,
        "occurred_at": WHEN,
        "source": "hubspot",
        "data": {k: v for k, v in data.items() if v is not None},
    }


def problems_of(value: Any) -> list[str]:
    with pytest.raises(InvalidEventError) as caught:
        parse_event(value)
    assert isinstance(caught.value, RevpulseError)
    return [problem.field for problem in caught.value.problems]


@pytest.mark.parametrize(
    ("event_type", "cls"),
    [
        ("lead.created", LeadCreated),
        ("lead.converted", LeadConverted),
        ("contract.signed", ContractSigned),
        ("customer.churned", CustomerChurned),
        ("spend.recorded", SpendRecorded),
    ],
)
def test_each_type_parses(event_type: str, cls: type) -> None:
    event = parse_event(raw(event_type))
    assert isinstance(event, cls)
    assert event.event_id == "evt-1"
    assert event.source == "hubspot"
    assert event.occurred_at == dt.datetime(2024, 3, 1, 8, 0, tzinfo=dt.UTC)


def test_contract_fields_and_defaults() -> None:
    event = parse_event(raw(kind=None, one_time_fees=None, currency=None, lead_id=None))
    assert isinstance(event, ContractSigned)
    assert event.data.kind == "new"
    assert event.data.one_time_fees == Decimal(0)
    assert event.data.currency is None
    assert event.data.lead_id is None
    assert event.data.start_date == dt.date(2024, 4, 1)
    assert event.data.term_months == 36
    assert event.data.recurring_value == Decimal("24000")


def test_lead_fields() -> None:
    event = parse_event(raw("lead.created"))
    assert isinstance(event, LeadCreated)
    assert (event.data.lead_id, event.data.channel, event.data.origin) == (
        "L1",
        "paid_search",
        "marketing",
    )
    assert event.data.estimated_value == Decimal("1500.50")


def test_channel_is_normalized_to_lower_case() -> None:
    event = parse_event(raw("lead.created", channel="Paid_Search"))
    assert isinstance(event, LeadCreated)
    assert event.data.channel == "paid_search"


@pytest.mark.parametrize(
    ("occurred_at", "expected_day"),
    [
        ("2024-03-01T23:30:00-02:00", dt.date(2024, 3, 2)),
        ("2024-03-01T00:30:00+01:00", dt.date(2024, 2, 29)),
        ("2024-03-01T12:00:00Z", dt.date(2024, 3, 1)),
    ],
)
def test_occurred_day_is_the_utc_day(occurred_at: str, expected_day: dt.date) -> None:
    event = parse_event({**raw("lead.converted"), "occurred_at": occurred_at})
    assert event.occurred_day == expected_day


@pytest.mark.parametrize(
    ("effective_date", "expected"),
    [("2024-06-30", dt.date(2024, 6, 30)), (None, dt.date(2024, 3, 1))],
)
def test_churn_effective_date_defaults_to_occurred_day(
    effective_date: str | None, expected: dt.date
) -> None:
    event = parse_event(raw("customer.churned", effective_date=effective_date))
    assert isinstance(event, CustomerChurned)
    assert event.effective_date == expected


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({**raw(), "type": "lead.deleted"}, "type"),
        ({**raw(), "type": None}, "type"),
        ({k: v for k, v in raw().items() if k != "type"}, "type"),
        ({**raw(), "colour": "blue"}, "colour"),
        (raw(colour="blue"), "data.colour"),
        ({k: v for k, v in raw().items() if k != "event_id"}, "event_id"),
        ({**raw(), "event_id": ""}, "event_id"),
        ({**raw(), "event_id": "x" * 129}, "event_id"),
        ({k: v for k, v in raw().items() if k != "occurred_at"}, "occurred_at"),
        ({**raw(), "occurred_at": "2024-03-01T10:00:00"}, "occurred_at"),
        ({**raw(), "occurred_at": "2024-02-30T10:00:00Z"}, "occurred_at"),
        ({**raw(), "occurred_at": "yesterday"}, "occurred_at"),
        ({k: v for k, v in raw().items() if k != "data"}, "data"),
        (raw(contract_id=None), "data.contract_id"),
        (raw(account_id=None), "data.account_id"),
        (raw(start_date=None), "data.start_date"),
        (raw(start_date="2023-02-29"), "data.start_date"),
        (raw(start_date="01/04/2024"), "data.start_date"),
        (raw(term_months=0), "data.term_months"),
        (raw(term_months=-12), "data.term_months"),
        (raw(term_months=1201), "data.term_months"),
        (raw(term_months="twelve"), "data.term_months"),
        (raw(recurring_value=None), "data.recurring_value"),
        (raw(recurring_value="-1"), "data.recurring_value"),
        (raw(recurring_value="ten"), "data.recurring_value"),
        (raw(recurring_value="Infinity"), "data.recurring_value"),
        (raw(one_time_fees="-0.01"), "data.one_time_fees"),
        (raw(currency="usd"), "data.currency"),
        (raw(currency="EURO"), "data.currency"),
        (raw(kind="upsell"), "data.kind"),
        (raw(origin="web"), "data.origin"),
        (raw(channel="paid search"), "data.channel"),
        (raw("lead.created", channel=None), "data.channel"),
        (raw("lead.created", origin=None), "data.origin"),
        (raw("lead.created", estimated_value="-5"), "data.estimated_value"),
        (raw("lead.created", surprise=1), "data.surprise"),
        (raw("lead.converted", lead_id=None), "data.lead_id"),
        (raw("customer.churned", effective_date="2024-13-01"), "data.effective_date"),
        (raw("spend.recorded", amount="-100"), "data.amount"),
        (raw("spend.recorded", currency=None), "data.currency"),
        (raw("spend.recorded", currency="dollars"), "data.currency"),
    ],
)
def test_contract_violations_name_the_field(value: dict[str, Any], field: str) -> None:
    assert field in problems_of(value)


def test_every_problem_is_reported_at_once() -> None:
    fields = problems_of(raw(term_months=0, currency="usd", recurring_value="-1"))
    assert sorted(fields) == ["data.currency", "data.recurring_value", "data.term_months"]


def test_unknown_type_message_lists_the_types() -> None:
    with pytest.raises(
        InvalidEventError, match=r"unknown event type 'lead.deleted'.*spend.recorded"
    ):
        parse_event({**raw(), "type": "lead.deleted"})


@pytest.mark.parametrize("value", [[raw()], "event", 42, None])
def test_a_non_object_is_refused(value: Any) -> None:
    assert problems_of(value) == ["<event>"]


@pytest.mark.parametrize("body", [b"{", b"\xff\xfe", b"", "not json"])
def test_bytes_that_are_not_json_are_refused(body: bytes | str) -> None:
    with pytest.raises(InvalidEventError) as caught:
        parse_event_bytes(body)
    assert [p.field for p in caught.value.problems] == ["<body>"]


def test_json_numbers_become_exact_decimals() -> None:
    body = json.dumps(raw()).replace('"24000"', "0.1").replace('"1500"', "0.2")
    event = parse_event_bytes(body.encode())
    assert isinstance(event, ContractSigned)
    assert event.data.recurring_value == Decimal("0.1")
    assert event.data.recurring_value + event.data.one_time_fees == Decimal("0.3")
    assert 0.1 + 0.2 != 0.3  # what floats would have given


@pytest.mark.parametrize(
    ("number", "expected"),
    [("24000", Decimal(24000)), ("1e3", Decimal(1000)), ("12345.678901", Decimal("12345.678901"))],
)
def test_json_number_forms(number: str, expected: Decimal) -> None:
    body = json.dumps(raw()).replace('"24000"', number)
    event = parse_event_bytes(body)
    assert isinstance(event, ContractSigned)
    assert event.data.recurring_value == expected


@pytest.mark.parametrize(
    "amount", ["1e400", "NaN", "Infinity", "-0.5", "true", '"abc"', "12345678901234567890123456789"]
)
def test_unusable_json_amounts_are_refused(amount: str) -> None:
    body = json.dumps(raw("spend.recorded")).replace('"99.99"', amount)
    with pytest.raises(InvalidEventError) as caught:
        parse_event_bytes(body)
    assert [p.field for p in caught.value.problems] == ["data.amount"]


@given(st.lists(st.decimals(min_value=0, max_value=10**9, places=2), min_size=1, max_size=20))
def test_json_amounts_sum_exactly(amounts: list[Decimal]) -> None:
    parsed = [
        parse_event_bytes(json.dumps(raw("spend.recorded")).replace('"99.99"', str(amount)))
        for amount in amounts
    ]
    spends = [event for event in parsed if isinstance(event, SpendRecorded)]
    assert len(spends) == len(amounts)
    total = sum((event.data.amount for event in spends), Decimal(0))
    assert total == sum(amounts, Decimal(0))


@pytest.mark.parametrize(
    ("event_type", "data_changes", "key"),
    [
        ("lead.created", {"lead_id": "L7"}, "lead:L7"),
        ("lead.converted", {"lead_id": "L7"}, "lead:L7"),
        ("contract.signed", {"account_id": "A9"}, "account:A9"),
        ("customer.churned", {"account_id": "A9"}, "account:A9"),
        ("spend.recorded", {"channel": "events"}, "channel:events"),
    ],
)
def test_partition_key(event_type: str, data_changes: dict[str, Any], key: str) -> None:
    assert partition_key(parse_event(raw(event_type, **data_changes))) == key


@pytest.mark.parametrize("event_type", list(VALID))
def test_canonical_json_round_trips(event_type: str) -> None:
    event = parse_event(raw(event_type))
    assert parse_event_bytes(event_to_json(event)) == event


def test_canonical_json_keeps_decimals_as_strings_and_drops_none() -> None:
    event = parse_event(raw("lead.converted", account_id=None))
    out = json.loads(event_to_json(event))
    assert out["data"] == {"lead_id": "L1"}
    money = json.loads(event_to_json(parse_event(raw("spend.recorded"))))
    assert money["data"]["amount"] == "99.99"


@pytest.mark.parametrize(
    ("event_type", "changes", "field", "message"),
    [
        ("contract.signed", {"term_months": True}, "data.term_months", "not a boolean"),
        ("contract.signed", {"term_months": Decimal("12.5")}, "data.term_months", "whole number"),
        ("contract.signed", {"start_date": 19000}, "data.start_date", "not a number"),
        ("lead.created", {"channel": "all"}, "data.channel", "reserved"),
        ("lead.created", {"channel": "ALL"}, "data.channel", "reserved"),
    ],
)
def test_lax_coercions_are_refused(
    event_type: str, changes: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(InvalidEventError) as caught:
        parse_event(raw(event_type, **changes))
    assert [p.field for p in caught.value.problems] == [field]
    assert message in caught.value.problems[0].message


def test_a_numeric_timestamp_is_refused() -> None:
    with pytest.raises(InvalidEventError) as caught:
        parse_event({**raw(), "occurred_at": 1_700_000_000})
    assert caught.value.problems[0].field == "occurred_at"


def test_whole_decimal_term_is_accepted() -> None:
    event = parse_event(raw("contract.signed", term_months=Decimal("24")))
    assert isinstance(event, ContractSigned)
    assert event.data.term_months == 24


@pytest.mark.parametrize("event_type", list(VALID))
def test_canonical_parse_equals_the_outside_parse(event_type: str) -> None:
    event = parse_event(raw(event_type))
    assert parse_canonical_event(event_to_json(event)) == event


def test_canonical_parse_reports_bad_json_as_body() -> None:
    with pytest.raises(InvalidEventError) as caught:
        parse_canonical_event(b"{oops")
    assert caught.value.problems[0].field == "<body>"


# -- the contract's bounds (models.limits) ---------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        raw(start_date="1900-01-01"),
        raw(start_date="2199-11-30", term_months=1),  # ends on 2199-12-30
        raw(start_date="2099-12-31", term_months=1200),  # ends on 2199-12-31
        raw(recurring_value="1000000000000", one_time_fees="1000000000000"),
        raw(recurring_value="999999999999.999999"),
        raw(recurring_value="0.000001"),
        raw(recurring_value="1.5000000000"),  # trailing zeros past the sixth place
        raw("customer.churned", effective_date="1900-01-01"),
        raw("customer.churned", effective_date="2199-12-31"),
        raw("lead.created", estimated_value="1000000000000"),
        raw("spend.recorded", amount="1000000000000.000000"),
        {**raw(), "occurred_at": "2199-12-31T23:59:59.999999Z"},
        {**raw(), "occurred_at": "2200-01-01T00:59:59+01:00"},  # 2199-12-31 23:59:59 UTC
        {**raw(), "occurred_at": "1900-01-01T00:00:00Z"},
        {**raw(), "occurred_at": "1899-12-31T23:00:00-01:00"},  # 1900-01-01 00:00 UTC
    ],
)
def test_values_at_the_bounds_are_accepted(value: dict[str, Any]) -> None:
    assert parse_event(value).event_id == "evt-1"


@pytest.mark.parametrize(
    ("value", "field", "message"),
    [
        (raw(start_date="1899-12-31"), "data.start_date", "between 1900-01-01 and 2199-12-31"),
        (raw(start_date="9999-12-31"), "data.start_date", "between 1900-01-01 and 2199-12-31"),
        (raw(start_date="2199-12-01", term_months=1), "data.term_months", "ends on 2200-01-01"),
        (raw(start_date="2100-01-01", term_months=1200), "data.term_months", "start_date"),
        (raw(term_months=1201), "data.term_months", "less than or equal to 1200"),
        (raw(recurring_value="1000000000000.000001"), "data.recurring_value", "1000000000000"),
        (raw(recurring_value="1E+22"), "data.recurring_value", "1000000000000"),
        (raw(recurring_value="0.0000001"), "data.recurring_value", "6 decimal places"),
        (raw(one_time_fees="1.1234567"), "data.one_time_fees", "6 decimal places"),
        (raw("lead.created", estimated_value="1.0000005"), "data.estimated_value", "decimal"),
        (raw("spend.recorded", amount="1000000000001"), "data.amount", "1000000000000"),
        (raw("customer.churned", effective_date="2200-01-01"), "data.effective_date", "2199"),
        (raw("customer.churned", effective_date="1899-12-31"), "data.effective_date", "1900"),
        ({**raw(), "occurred_at": "9999-12-31T23:59:59-01:00"}, "occurred_at", "between"),
        ({**raw(), "occurred_at": "0001-01-01T00:00:00+01:00"}, "occurred_at", "between"),
        ({**raw(), "occurred_at": "2200-01-01T00:00:00Z"}, "occurred_at", "between"),
        ({**raw(), "occurred_at": "2199-12-31T23:59:59-00:01"}, "occurred_at", "between"),
        ({**raw(), "occurred_at": "1900-01-01T00:00:00+00:01"}, "occurred_at", "between"),
        ({**raw(), "occurred_at": "3000-01-01T00:00:00Z"}, "occurred_at", "between"),
        (raw(channel="overflow"), "data.channel", "reserved"),
        (raw("lead.created", channel="Overflow"), "data.channel", "cap on distinct channels"),
        (raw("spend.recorded", channel="OVERFLOW"), "data.channel", "reserved"),
    ],
)
def test_values_past_the_bounds_are_refused(
    value: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(InvalidEventError) as caught:
        parse_event(value)
    problems = {problem.field: problem.message for problem in caught.value.problems}
    assert field in problems, problems
    assert message in problems[field]


def test_a_term_past_the_last_date_names_its_start_and_term() -> None:
    with pytest.raises(InvalidEventError) as caught:
        parse_event(raw(start_date="2190-06-15", term_months=120))
    (problem,) = caught.value.problems
    assert problem.field == "data.term_months"
    assert problem.message == (
        "Value error, start_date 2190-06-15 + 120 months ends on 2200-06-15, "
        "after the last allowed date 2199-12-31"
    )


@pytest.mark.parametrize(
    ("number", "expected"),
    [("1E+3", Decimal(1000)), ("1e12", Decimal(10**12)), ("123.4560000000", Decimal("123.456"))],
)
def test_decimal_places_ignore_the_exponent_spelling(number: str, expected: Decimal) -> None:
    body = json.dumps(raw("spend.recorded")).replace('"99.99"', number)
    event = parse_event_bytes(body)
    assert isinstance(event, SpendRecorded)
    assert event.data.amount == expected


@pytest.mark.parametrize(
    ("value", "places"),
    [
        (Decimal("1E+3"), 0),
        (Decimal("1000"), 0),
        (Decimal("0E-12"), 0),
        (Decimal("-0.000"), 0),
        (Decimal("1.50"), 1),
        (Decimal("0.000001"), 6),
        (Decimal("1.2345670"), 6),
        (Decimal("1E-7"), 7),
        (Decimal("12.5E-6"), 7),
        (Decimal("1234567890123456789012345678901234567890.1"), 1),
    ],
)
def test_decimal_places(value: Decimal, places: int) -> None:
    assert decimal_places(value) == places


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity")])
def test_decimal_places_of_a_non_number_is_an_error(value: Decimal) -> None:
    with pytest.raises(ValueError, match="finite"):
        decimal_places(value)


# -- occurred_at against the wall clock ---------------------------------------------------

NOW = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.UTC)
A_DAY = dt.timedelta(days=1)


@pytest.mark.parametrize(
    "occurred_at",
    [
        "2024-03-02T12:00:00Z",
        "2024-03-02T13:00:00+01:00",
        "2024-03-01T12:00:00Z",
        "1900-01-01T00:00:00Z",
    ],
)
def test_up_to_max_future_ahead_is_accepted(occurred_at: str) -> None:
    check_not_future(parse_event({**raw(), "occurred_at": occurred_at}), NOW, A_DAY)


@pytest.mark.parametrize(
    "occurred_at",
    ["2024-03-02T12:00:00.000001Z", "2024-03-02T12:00:01+00:00", "2150-01-01T00:00:00Z"],
)
def test_more_than_max_future_ahead_is_refused(occurred_at: str) -> None:
    event = parse_event({**raw(), "occurred_at": occurred_at})
    with pytest.raises(InvalidEventError) as caught:
        check_not_future(event, NOW, A_DAY)
    (problem,) = caught.value.problems
    assert problem.field == "occurred_at"
    assert "more than 86400 s ahead of the wall clock" in problem.message


# -- canonical_digest: a re-send or a conflict ----------------------------------------------


def _digest(value: dict[str, Any]) -> bytes:
    return canonical_digest(parse_event(value))


@pytest.mark.parametrize(
    "same",
    [
        {**raw(), "occurred_at": "2024-03-01T08:00:00Z"},  # the same instant as WHEN
        {**raw(), "occurred_at": "2024-03-01T03:30:00-04:30"},
        raw(recurring_value="24000.000000"),
        raw(recurring_value="2.4E+4"),
        raw(one_time_fees="1500.0"),
        {**raw(), "data": {**raw()["data"], "origin": None}},  # null: as if absent
        {**raw(), "data": {**raw()["data"], "channel": None, "lead_id": "L1"}},
    ],
)
def test_the_digest_ignores_how_the_same_content_is_written(same: dict[str, Any]) -> None:
    assert _digest(same) == _digest(raw())
    assert len(_digest(raw())) == 8


def test_the_digest_treats_defaults_and_null_as_written_out() -> None:
    defaulted = raw(kind=None, one_time_fees=None)
    explicit = raw(kind="new", one_time_fees="0")
    assert _digest(defaulted) == _digest(explicit)
    assert _digest({**raw(), "source": None}) == _digest(
        {k: v for k, v in raw().items() if k != "source"}
    )


@pytest.mark.parametrize(
    "other",
    [
        {**raw(), "occurred_at": "2024-03-01T08:00:01Z"},
        raw(recurring_value="24000.000001"),
        raw(channel="events"),
        raw(currency="USD"),
        raw(kind="new"),
        {**raw(), "source": "salesforce"},
        {**raw(), "type": "lead.created", "data": VALID["lead.created"]},
    ],
)
def test_the_digest_tells_other_content_apart(other: dict[str, Any]) -> None:
    assert _digest(other) != _digest(raw())


def test_the_digest_sees_channels_folded_to_lower_case() -> None:
    lead = raw("lead.created", channel="Paid_Search")
    assert _digest(lead) == _digest(raw("lead.created", channel="paid_search"))
