"""Metric points from a ledger: the definitions of DESIGN.md with concrete numbers."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest
from builders import churn, contract, conversion, day, find, has_series, lead, spend, value
from hypothesis import given, settings
from hypothesis import strategies as st

from models.catalogue import BY_NAME
from models.events import Event
from models.ledger import Ledger, Outcome
from models.policy import MetricPolicy
from models.series import MetricPoint, compute_points, iter_defined

D = Decimal
AS_OF = day("2024-03-31")
PATIENT = MetricPolicy(lateness=dt.timedelta(days=3650))

SCENARIO: list[Event] = [
    spend("s1", "paid_search", "60000", "2024-03-05"),
    spend("s2", "outbound", "30000", "2024-03-06"),
    lead("l1", "L1", "2024-03-10", estimated_value="1000"),
    lead("l2", "L2", "2024-03-11", estimated_value="500"),
    lead("l3", "L3", "2024-03-12", origin="sales", channel="outbound"),
    lead("l4", "L4", "2024-03-13", channel="organic"),
    conversion("c1", "L1", "2024-03-15"),
    conversion("c3", "L3", "2024-03-16"),
    # ACV 1,200,000 from a marketing lead
    contract("k1", "C1", "2024-03-20", account_id="A1", lead_id="L1", recurring_value="1200000"),
    # ACV 500,000 from a sales lead
    contract(
        "k2",
        "C2",
        "2024-03-21",
        account_id="A2",
        lead_id="L3",
        term_months=24,
        recurring_value="1000000",
    ),
    # a 6-month renewal of 4,000: ACV 8,000; no lead, so origin and channel unknown
    contract(
        "k3",
        "C3",
        "2024-03-22",
        account_id="A3",
        kind="renewal",
        term_months=6,
        recurring_value="4000",
    ),
]


def points_of(
    events: list[Event], as_of: dt.date = AS_OF, policy: MetricPolicy = PATIENT
) -> list[MetricPoint]:
    ledger = Ledger(policy)
    for event in events:
        assert ledger.apply(event) is Outcome.APPLIED
    return compute_points(ledger, as_of)


def points_allowing_duplicates(events: list[Event], as_of: dt.date) -> list[MetricPoint]:
    ledger = Ledger(PATIENT)
    outcomes = {ledger.apply(event) for event in events}
    assert Outcome.LATE not in outcomes
    return compute_points(ledger, as_of)


@pytest.fixture(scope="module")
def points() -> list[MetricPoint]:
    return points_of(SCENARIO)


@pytest.mark.parametrize(
    ("metric", "window", "origin", "channel", "expected"),
    [
        ("leads", "30d", "all", "all", D(4)),
        ("leads", "30d", "marketing", "all", D(3)),
        ("leads", "30d", "all", "paid_search", D(2)),
        ("leads", "month", "sales", "all", D(1)),
        ("lead_value", "30d", "all", "all", D(1500)),
        ("lead_value", "30d", "all", "organic", D(0)),
        ("conversions", "30d", "all", "all", D(2)),
        ("conversion_rate", "30d", "all", "all", D("0.5")),
        ("conversion_rate", "30d", "marketing", "all", D("0.333333")),
        ("conversion_rate", "30d", "sales", "all", D(1)),
        ("conversion_rate", "30d", "all", "organic", D(0)),
        ("bookings", "30d", "all", "all", D(3)),
        ("bookings", "30d", "unknown", "all", D(1)),
        ("bookings_tcv", "30d", "all", "all", D(2204000)),
        ("bookings_acv", "30d", "all", "all", D("569333.333333")),
        ("bookings_acv", "30d", "unknown", "all", D(8000)),
        ("new_customers", "30d", "all", "all", D(2)),
        ("new_acv", "30d", "all", "all", D(850000)),
        ("new_acv", "30d", "sales", "all", D(500000)),
        ("marketing_acv", "30d", "all", "all", D(1200000)),
        ("marketing_acv_per_lead", "30d", "all", "all", D(400000)),
        ("spend", "30d", "all", "all", D(90000)),
        ("spend", "30d", "all", "paid_search", D(60000)),
        ("cac", "30d", "all", "all", D(45000)),
        ("cac", "30d", "all", "paid_search", D(60000)),
        ("cac", "30d", "all", "outbound", D(30000)),
        ("roas", "30d", "all", "paid_search", D(20)),
        ("roas", "30d", "all", "outbound", D("16.666667")),
        ("roas", "30d", "all", "all", D("18.888889")),
        ("cac_payback_months", "30d", "all", "paid_search", D("0.6")),
        ("cac_payback_months", "30d", "all", "outbound", D("0.72")),
        ("arr_new", "30d", "all", "all", D(1700000)),
        ("arr_expansion", "30d", "all", "all", D(0)),
        ("arr", "point", "all", "all", D(1708000)),
        ("active_contracts", "point", "all", "all", D(3)),
        ("active_customers", "point", "all", "all", D(3)),
        ("book_acv", "point", "all", "all", D("569333.333333")),
        # the 7-day window (2024-03-25 .. 31) holds none of it
        ("leads", "7d", "all", "all", D(0)),
        ("spend", "7d", "all", "paid_search", D(0)),
    ],
)
def test_scenario_values(
    points: list[MetricPoint],
    metric: str,
    window: str,
    origin: str,
    channel: str,
    expected: Decimal,
) -> None:
    assert value(points, metric, window, origin, channel) == expected


@pytest.mark.parametrize(
    ("metric", "window", "origin", "channel", "numerator", "denominator"),
    [
        ("conversion_rate", "30d", "marketing", "all", D(1), D(3)),
        ("conversion_rate", "7d", "all", "all", D(0), D(0)),
        ("cac", "30d", "all", "all", D(90000), D(2)),
        ("marketing_acv", "30d", "all", "all", D(1200000), D(1)),
        ("marketing_acv_per_lead", "30d", "all", "all", D(1200000), D(3)),
        ("book_acv", "point", "all", "all", D(1708000), D(3)),
    ],
)
def test_quotients_carry_their_parts(
    points: list[MetricPoint],
    metric: str,
    window: str,
    origin: str,
    channel: str,
    numerator: Decimal,
    denominator: Decimal,
) -> None:
    point = find(points, metric, window, origin, channel)
    assert (point.numerator, point.denominator) == (numerator, denominator)
    assert point.as_of == AS_OF


@pytest.mark.parametrize(
    ("metric", "window", "origin", "channel"),
    [
        ("conversion_rate", "7d", "all", "all"),
        ("conversion_rate", "30d", "unknown", "all"),  # conversions can't be without leads
        ("bookings_acv", "7d", "all", "all"),
        ("new_acv", "30d", "unknown", "all"),  # the renewal is not new
        ("marketing_acv", "7d", "all", "all"),
        ("marketing_acv_per_lead", "7d", "all", "all"),
        ("cac", "7d", "all", "all"),
        ("roas", "7d", "all", "paid_search"),
        ("cac_payback_months", "7d", "all", "paid_search"),
        ("ltv", "point", "all", "all"),  # no churn yet
        ("customer_churn_rate", "point", "all", "all"),  # nobody was active a year ago
    ],
)
def test_zero_denominators_are_undefined_never_zero(
    points: list[MetricPoint], metric: str, window: str, origin: str, channel: str
) -> None:
    point = find(points, metric, window, origin, channel)
    assert point.value is None
    assert point.denominator == 0


def test_an_empty_ledger_has_only_all_segments_and_undefined_ratios() -> None:
    points = compute_points(Ledger(MetricPolicy()), AS_OF)
    assert {(p.origin, p.channel) for p in points} == {("all", "all")}
    assert value(points, "leads", "30d") == 0
    assert value(points, "arr", "point") == 0
    for metric in ("conversion_rate", "cac", "marketing_acv", "book_acv", "ltv", "roas"):
        assert (
            value(points, metric, "30d" if metric not in ("book_acv", "ltv") else "point") is None
        )
    assert all(p.value != 0 for p in points if p.denominator is not None)
    assert not any(p.value is None for p in iter_defined(points))


def test_every_point_is_a_catalogue_metric_and_unique(points: list[MetricPoint]) -> None:
    assert {p.metric for p in points} == set(BY_NAME)
    ids = [p.series_id for p in points]
    assert len(ids) == len(set(ids))
    windows = {p.window for p in points}
    assert windows == {"7d", "30d", "90d", "365d", "month", "quarter", "point"}


def test_series_id() -> None:
    point = MetricPoint("cac", "30d", "all", "organic", D(1), AS_OF)
    assert point.series_id == "cac|30d|all|organic"


# -- order independence and duplicates ------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_the_same_events_in_any_order_give_the_same_points(seed: int) -> None:
    shuffled = list(SCENARIO)
    random.Random(seed).shuffle(shuffled)
    assert points_of(shuffled) == points_of(SCENARIO)


def test_reversed_order_restates_unknown_attribution_away() -> None:
    reversed_points = points_of(list(reversed(SCENARIO)))
    assert reversed_points == points_of(SCENARIO)
    # only the renewal without a lead stays unknown
    assert value(reversed_points, "bookings", "30d", "unknown", "all") == 1
    assert value(reversed_points, "conversions", "30d", "all", "unknown") == 0
    assert value(reversed_points, "conversions", "30d", "sales", "all") == 1


def test_duplicates_count_once() -> None:
    ledger = Ledger(PATIENT)
    outcomes = [ledger.apply(event) for event in SCENARIO + SCENARIO[::2]]
    assert outcomes.count(Outcome.DUPLICATE) == len(SCENARIO[::2])
    assert compute_points(ledger, AS_OF) == points_of(SCENARIO)


def test_a_contract_before_its_lead_takes_the_lead_attribution() -> None:
    signed = contract("k1", "C1", "2024-03-20", lead_id="L9", recurring_value="600000")
    before = points_of([signed])
    assert value(before, "bookings", "30d", "unknown", "all") == 1
    assert value(before, "marketing_acv", "30d") is None
    after = points_of([signed, lead("l9", "L9", "2024-03-18", channel="referral")])
    assert value(after, "bookings", "30d", "marketing", "all") == 1
    assert value(after, "bookings", "30d", "all", "referral") == 1
    assert value(after, "marketing_acv", "30d") == 600000
    assert value(after, "marketing_acv_per_lead", "30d") == 600000
    assert not has_series(after, "bookings", "unknown", "all")
    assert not has_series(after, "bookings", "all", "unknown")


ids = st.sampled_from(["1", "2", "3"])
days = st.integers(min_value=0, max_value=40).map(
    lambda n: (dt.date(2024, 2, 20) + dt.timedelta(days=n)).isoformat()
)
amounts = st.integers(min_value=0, max_value=50_000).map(str)
origins = st.sampled_from(["marketing", "sales"])
channels = st.sampled_from(["organic", "paid_search"])
events = st.one_of(
    st.builds(lambda i, d, o, c, v: ("lead", i, d, o, c, v), ids, days, origins, channels, amounts),
    st.builds(lambda i, d: ("conversion", i, d), ids, days),
    st.builds(
        lambda i, lead_id, d, term, v, kind, o: ("contract", i, lead_id, d, term, v, kind, o),
        ids,
        st.none() | ids,
        days,
        st.sampled_from([1, 6, 12, 36]),
        amounts,
        st.sampled_from(["new", "expansion"]),
        st.none() | origins,
    ),
    st.builds(lambda a, d, c: ("churn", a, d, c), ids, days, st.none() | ids),
    st.builds(lambda c, v, d: ("spend", c, v, d), channels, amounts, days),
)


def build(number: int, spec: tuple[object, ...]) -> Event:
    kind, *args = spec
    event_id = f"e{number}"
    match kind:
        case "lead":
            lead_id, when, origin, channel, estimate = args
            return lead(
                event_id,
                f"L{lead_id}",
                str(when),
                origin=str(origin),
                channel=str(channel),
                estimated_value=str(estimate),
            )
        case "conversion":
            lead_id, when = args
            return conversion(event_id, f"L{lead_id}", str(when))
        case "contract":
            contract_id, lead_id, when, term, recurring, contract_kind, origin = args
            return contract(
                event_id,
                f"C{contract_id}",
                str(when),
                account_id=f"A{contract_id}",
                lead_id=None if lead_id is None else f"L{lead_id}",
                term_months=int(str(term)),
                recurring_value=str(recurring),
                kind=str(contract_kind),
                origin=None if origin is None else str(origin),
            )
        case "churn":
            account, when, contract_id = args
            return churn(
                event_id,
                f"A{account}",
                str(when),
                contract_id=None if contract_id is None else f"C{contract_id}",
            )
        case _:
            channel, amount, when = args
            return spend(event_id, str(channel), str(amount), str(when))


@settings(max_examples=60, deadline=None)
@given(specs=st.lists(events, min_size=1, max_size=12), data=st.data())
def test_order_independence_on_generated_logs(
    specs: list[tuple[object, ...]], data: st.DataObject
) -> None:
    log = [build(n, spec) for n, spec in enumerate(specs)]
    shuffled = data.draw(st.permutations(log))
    with_duplicates = shuffled + data.draw(st.lists(st.sampled_from(log), max_size=4))
    as_of = day("2024-03-20")
    assert points_allowing_duplicates(with_duplicates, as_of) == points_of(log, as_of)


# -- the book in points ----------------------------------------------------------------------


def test_arr_on_a_date_and_contracted_arr() -> None:
    events = [
        contract("k1", "C1", "2024-01-10", start_date="2024-02-01", recurring_value="12000"),
        contract(
            "k2",
            "C2",
            "2024-01-11",
            account_id="A2",
            start_date="2024-06-01",
            term_months=24,
            recurring_value="12000",
            one_time_fees="5000",
        ),
    ]
    assert value(points_of(events, day("2024-01-31")), "arr", "point") == 0
    feb = points_of(events, day("2024-02-01"))
    assert value(feb, "arr", "point") == 12000
    assert value(feb, "book_acv", "point") == 12000
    future = points_of(events, day("2024-06-01"))
    assert value(future, "arr", "point") == 18000
    assert value(future, "active_contracts", "point") == 2
    assert value(future, "book_acv", "point") == 9000
    assert value(points_of(events, day("2025-02-01")), "arr", "point") == 6000
    assert value(points_of(events, day("2026-06-01")), "arr", "point") == 0
    assert value(points_of(events, day("2026-06-01")), "book_acv", "point") is None


def test_fees_count_in_acv_by_policy_never_in_arr() -> None:
    policy = MetricPolicy(include_one_time_fees=True, lateness=dt.timedelta(days=3650))
    events = [
        contract(
            "k1", "C1", "2024-03-01", term_months=36, recurring_value="24000", one_time_fees="1500"
        )
    ]
    points = points_of(events, day("2024-03-31"), policy)
    assert value(points, "bookings_acv", "month") == 8500
    assert value(points, "bookings_tcv", "month") == 25500
    assert value(points, "bookings_acv", "30d") is None  # 2024-03-02 .. 31
    assert value(points, "arr", "point") == 8000
    assert value(points, "book_acv", "point") == 8000


def test_churn_rate_ltv_and_arr_movements() -> None:
    events = [
        contract(
            "k1", "C1", "2023-06-01", account_id="A1", term_months=24, recurring_value="24000"
        ),
        contract(
            "k2", "C2", "2023-06-02", account_id="A2", term_months=24, recurring_value="48000"
        ),
        contract("k3", "C3", "2024-03-01", account_id="A3", recurring_value="10000"),
        contract(
            "k4", "C4", "2024-03-02", account_id="A2", kind="expansion", recurring_value="6000"
        ),
        churn("x1", "A1", "2024-06-01"),
    ]
    points = points_of(events, day("2024-12-31"))
    assert value(points, "customer_churn_rate", "point") == D("0.5")
    assert find(points, "customer_churn_rate", "point").numerator == 1
    assert value(points, "ltv", "point") == 20000  # mean new ACV 10,000 / 0.5
    assert value(points, "arr_churned", "365d") == 12000
    assert value(points, "arr_new", "365d") == 10000
    assert value(points, "arr_expansion", "365d") == 6000
    assert value(points, "arr", "point") == 24000 + 10000 + 6000
    assert value(points, "active_customers", "point") == 2


def test_currency_conversion_reaches_the_points() -> None:
    policy = MetricPolicy(fx_rates={"EUR": D("1.1")}, lateness=dt.timedelta(days=3650))
    events = [
        contract("k1", "C1", "2024-03-10", lead_id="L1", recurring_value="10000", currency="EUR"),
        lead("l1", "L1", "2024-03-01"),
        spend("s1", "paid_search", "1000", "2024-03-02", currency="EUR"),
    ]
    points = points_of(events, day("2024-03-31"), policy)
    assert value(points, "new_acv", "30d") == 11000
    assert value(points, "spend", "30d", "all", "paid_search") == 1100
    assert value(points, "cac", "30d", "all", "paid_search") == 1100
    assert value(points, "roas", "30d", "all", "paid_search") == 10
    assert value(points, "arr", "point") == 11000


def test_as_of_reads_windows_ending_that_day(points: list[MetricPoint]) -> None:
    earlier = points_of(SCENARIO, day("2024-03-12"))
    assert value(earlier, "leads", "30d") == 3
    assert value(earlier, "leads", "7d") == 3
    assert value(earlier, "bookings", "month") == 0
    assert value(earlier, "spend", "7d") == 30000  # 2024-03-06 .. 12
    assert value(earlier, "spend", "30d") == 90000
    assert value(points_of(SCENARIO, day("2024-04-01")), "leads", "month") == 0
    assert value(points_of(SCENARIO, day("2024-04-01")), "leads", "30d") == 4
