"""The contract's bounds (models.limits): values at each bound are accepted, values just
past it refused, naming the field; and whatever is accepted, the ledger holds and
computes, equal to the oracle."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bench.oracle import compute_oracle
from models.errors import InvalidEventError
from models.events import (
    ContractSigned,
    CustomerChurned,
    Event,
    check_not_future,
    event_to_json,
    parse_event,
    parse_event_bytes,
)
from models.ledger import Ledger, Outcome
from models.limits import (
    MAX_DATE,
    MAX_INSTANT,
    MAX_MONEY,
    MAX_TERM_MONTHS,
    MIN_DATE,
    MIN_INSTANT,
    MONEY_DECIMALS,
)
from models.policy import MetricPolicy
from models.series import compute_points
from models.windows import add_months

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STEP = Decimal(1).scaleb(-MONEY_DECIMALS)  # the smallest amount: 0.000001
MONEY_FIELDS = [
    ("contract.signed", "recurring_value"),
    ("contract.signed", "one_time_fees"),
    ("lead.created", "estimated_value"),
    ("spend.recorded", "amount"),
]
BASE: dict[str, dict[str, Any]] = {
    "lead.created": {"lead_id": "L1", "channel": "organic", "origin": "marketing"},
    "contract.signed": {
        "contract_id": "C1",
        "account_id": "A1",
        "start_date": "2024-01-01",
        "term_months": 12,
        "recurring_value": "1",
    },
    "customer.churned": {"account_id": "A1"},
    "spend.recorded": {"channel": "organic", "amount": "1", "currency": "USD"},
}


def raw(event_type: str, when: str = "2024-01-01T00:00:00Z", **data: Any) -> dict[str, Any]:
    return {
        "event_id": "e1",
        "type": event_type,
        "occurred_at": when,
        "data": {**BASE[event_type], **data},
    }


def refused_fields(value: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidEventError) as caught:
        parse_event(value)
    return [problem.field for problem in caught.value.problems]


# -- money -------------------------------------------------------------------------------

steps = st.integers(0, int(MAX_MONEY / STEP))
spellings = st.sampled_from(("plain", "exponent", "padded", "json_number"))


def spelled(amount: Decimal, how: str) -> Any:
    """One of the ways a sender may write ``amount``: all the same value."""
    if how == "exponent":
        return f"{amount:E}"
    if how == "padded":
        return f"{amount:f}" + ("" if "." in f"{amount:f}" else ".") + "000"
    if how == "json_number":
        return amount  # a JSON number, decoded as a Decimal
    return f"{amount:f}"


@SETTINGS
@given(field=st.sampled_from(MONEY_FIELDS), step=steps, how=spellings)
def test_money_within_the_bounds_is_accepted(field: tuple[str, str], step: int, how: str) -> None:
    event_type, name = field
    amount = step * STEP
    event = parse_event(raw(event_type, **{name: spelled(amount, how)}))
    assert getattr(event.data, name) == amount


@SETTINGS
@given(
    field=st.sampled_from(MONEY_FIELDS),
    past=st.one_of(st.integers(1, 10), st.integers(1, 10**30)),
    how=spellings,
)
def test_money_past_the_bound_is_refused(field: tuple[str, str], past: int, how: str) -> None:
    event_type, name = field
    amount = MAX_MONEY + past * STEP
    assert f"data.{name}" in refused_fields(raw(event_type, **{name: spelled(amount, how)}))


@SETTINGS
@given(
    field=st.sampled_from(MONEY_FIELDS),
    units=st.integers(1, 10**12),
    places=st.integers(MONEY_DECIMALS + 1, MONEY_DECIMALS + 12),
)
def test_money_with_more_than_six_decimals_is_refused(
    field: tuple[str, str], units: int, places: int
) -> None:
    assume(units % 10 != 0)  # so that the last place is not a trailing zero
    event_type, name = field
    amount = Decimal(units).scaleb(-places)
    for text in (f"{amount:f}", f"{amount:E}"):
        body = json.dumps(raw(event_type, **{name: text}))
        with pytest.raises(InvalidEventError) as caught:
            parse_event_bytes(body)
        (problem,) = caught.value.problems
        assert problem.field == f"data.{name}"
        assert "6 decimal places" in problem.message


# -- dates --------------------------------------------------------------------------------

near_first = st.integers(-400, 400).map(lambda d: MIN_DATE + dt.timedelta(days=d))
near_last = st.integers(-400, 400).map(lambda d: MAX_DATE + dt.timedelta(days=d))


@SETTINGS
@given(day=st.one_of(near_first, near_last))
def test_effective_date_within_the_bounds(day: dt.date) -> None:
    value = raw("customer.churned", effective_date=day.isoformat())
    if MIN_DATE <= day <= MAX_DATE:
        event = parse_event(value)
        assert isinstance(event, CustomerChurned)
        assert event.data.effective_date == day
    else:
        assert refused_fields(value) == ["data.effective_date"]


@SETTINGS
@given(start=st.one_of(near_first, near_last), term=st.integers(1, MAX_TERM_MONTHS + 3))
def test_a_contract_ends_on_or_before_the_last_date(start: dt.date, term: int) -> None:
    value = raw("contract.signed", start_date=start.isoformat(), term_months=term)
    if start < MIN_DATE or start > MAX_DATE:
        assert "data.start_date" in refused_fields(value)
    elif term > MAX_TERM_MONTHS or add_months(start, term) > MAX_DATE:
        assert refused_fields(value) == ["data.term_months"]
    else:
        event = parse_event(value)
        assert isinstance(event, ContractSigned)
        assert add_months(event.data.start_date, event.data.term_months) <= MAX_DATE


offsets = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)
instants_near_bounds = st.one_of(
    st.integers(-3 * 86_400, 3 * 86_400).map(lambda s: MIN_INSTANT + dt.timedelta(seconds=s)),
    st.integers(-3 * 86_400, 3 * 86_400).map(
        lambda s: MAX_INSTANT.replace(microsecond=0) + dt.timedelta(seconds=s)
    ),
)


@SETTINGS
@given(instant=instants_near_bounds, zone=offsets)
def test_occurred_at_within_the_bounds_as_a_utc_instant(
    instant: dt.datetime, zone: dt.timezone
) -> None:
    value = raw("spend.recorded", when=instant.astimezone(zone).isoformat())
    if MIN_INSTANT <= instant <= MAX_INSTANT:
        assert parse_event(value).occurred_at == instant
    else:
        assert refused_fields(value) == ["occurred_at"]


@SETTINGS
@given(
    ahead=st.one_of(st.integers(-10, 10), st.integers(-(10**6), 10**6)),
    max_future_seconds=st.sampled_from((0, 60, 86_400)),
    zone=offsets,
)
def test_not_more_than_max_future_ahead_of_the_wall_clock(
    ahead: int, max_future_seconds: int, zone: dt.timezone
) -> None:
    now = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)
    when = now + dt.timedelta(seconds=max_future_seconds + ahead)
    event = parse_event(raw("spend.recorded", when=when.astimezone(zone).isoformat()))
    max_future = dt.timedelta(seconds=max_future_seconds)
    if ahead <= 0:
        check_not_future(event, now.astimezone(zone), max_future)
    else:
        with pytest.raises(InvalidEventError) as caught:
            check_not_future(event, now, max_future)
        assert [p.field for p in caught.value.problems] == ["occurred_at"]


# -- what is accepted, the ledger holds --------------------------------------------------------

bound_money = st.sampled_from(
    (Decimal(0), STEP, MAX_MONEY - STEP, MAX_MONEY, Decimal("123456789012.345678"))
)
bound_instants = st.sampled_from(
    (MIN_INSTANT, MIN_INSTANT + dt.timedelta(hours=13), MAX_INSTANT.replace(microsecond=0),
     MAX_INSTANT, dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
)  # fmt: skip
bound_starts = st.sampled_from(
    (MIN_DATE, dt.date(2099, 12, 31), dt.date(2199, 11, 30), dt.date(2199, 1, 31))
)


@st.composite
def bound_events(draw: st.DrawFn) -> list[Event]:
    """Events whose every value sits on (or next to) a bound."""
    events: list[Event] = []
    for index in range(draw(st.integers(1, 12))):
        when = draw(bound_instants).astimezone(draw(offsets))
        when = max(MIN_INSTANT, min(MAX_INSTANT, when))
        event_type = draw(st.sampled_from(sorted(BASE)))
        data: dict[str, Any] = {}
        if event_type == "contract.signed":
            start = draw(bound_starts)
            longest = 1
            while longest < MAX_TERM_MONTHS and add_months(start, longest + 1) <= MAX_DATE:
                longest += 1
            data = {
                "contract_id": f"C{index % 3}",
                "account_id": f"A{index % 2}",
                "start_date": start.isoformat(),
                "term_months": draw(st.sampled_from((1, longest))),
                "recurring_value": str(draw(bound_money)),
                "one_time_fees": str(draw(bound_money)),
                "currency": draw(st.sampled_from(("USD", "EUR"))),
            }
        elif event_type == "customer.churned":
            data = {"effective_date": draw(st.sampled_from((MIN_DATE, MAX_DATE))).isoformat()}
        elif event_type == "lead.created":
            data = {"lead_id": f"L{index % 3}", "estimated_value": str(draw(bound_money))}
        else:
            data = {"amount": str(draw(bound_money))}
        value = raw(event_type, when=when.isoformat(), **data)
        events.append(parse_event({**value, "event_id": f"e{index}"}))
    return events


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=bound_events(), include_fees=st.booleans())
def test_events_at_the_bounds_are_held_and_computed(
    events: list[Event], include_fees: bool
) -> None:
    policy = MetricPolicy(
        fx_rates={"EUR": Decimal("1.0875")},
        include_one_time_fees=include_fees,
        lateness=MAX_INSTANT - MIN_INSTANT,
    )
    ledger = Ledger(policy)
    assert {ledger.apply(event) for event in events} == {Outcome.APPLIED}
    rebuilt = Ledger(policy)
    for event in events:
        rebuilt.restore(parse_event_bytes(event_to_json(event)))
    assert rebuilt.buckets.as_dict() == ledger.buckets.as_dict()
    for as_of in (MIN_DATE, dt.date(2099, 12, 31), dt.date(2199, 12, 30), MAX_DATE):
        streamed = sorted(compute_points(ledger, as_of), key=lambda p: p.series_id)
        expected = sorted(compute_oracle(events, as_of, policy), key=lambda p: p.series_id)
        assert streamed == expected
