"""The ledger: intake (duplicates, lateness, currency), attribution and restatement."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from builders import churn, contract, conversion, day, lead, raw_event, spend, value

from models.book import BookedContract, Churn
from models.buckets import ALL
from models.errors import InvalidEventError
from models.events import ContractSigned, Event, parse_event
from models.ledger import Ledger, Outcome, check_currency
from models.policy import MetricPolicy, SubYearPolicy
from models.series import compute_points
from models.windows import Window, rolling

D = Decimal
MARCH = Window("month", dt.date(2024, 3, 1), dt.date(2024, 3, 31))


def ledger_of(*events: Event, policy: MetricPolicy | None = None) -> Ledger:
    ledger = Ledger(policy or MetricPolicy())
    for event in events:
        assert ledger.apply(event) is Outcome.APPLIED
    return ledger


def total(ledger: Ledger, metric: str, segment: tuple[str, str] = ALL) -> Decimal:
    return ledger.buckets.total(metric, segment, MARCH)


# -- intake ---------------------------------------------------------------------


def test_the_same_event_id_counts_once() -> None:
    ledger = Ledger(MetricPolicy())
    event = lead("e1", "L1", "2024-03-10", estimated_value="100")
    assert ledger.apply(event) is Outcome.APPLIED
    assert ledger.apply(event) is Outcome.DUPLICATE
    assert ledger.apply(event) is Outcome.DUPLICATE
    assert total(ledger, "leads") == 1
    assert total(ledger, "lead_value") == 100
    assert ledger.accepted_count == 1


@pytest.mark.parametrize(
    ("events", "metric"),
    [
        # the same entity sent twice under different event ids
        ([lead("e1", "L1", "2024-03-10"), lead("e2", "L1", "2024-03-12")], "leads"),
        (
            [
                lead("e1", "L1", "2024-03-10"),
                conversion("c1", "L1", "2024-03-11"),
                conversion("c2", "L1", "2024-03-12"),
            ],
            "conversions",
        ),
        (
            [contract("k1", "C1", "2024-03-10"), contract("k2", "C1", "2024-03-11")],
            "bookings",
        ),
    ],
)
def test_an_entity_counts_once_whatever_its_event_ids(events: list[Event], metric: str) -> None:
    ledger = ledger_of(*events)
    assert ledger.accepted_count == len(events)
    assert total(ledger, metric) == 1


def test_the_earliest_event_of_an_entity_wins() -> None:
    later = contract("k2", "C1", "2024-03-15", recurring_value="99000")
    earlier = contract("k1", "C1", "2024-03-10", recurring_value="12000")
    for order in ([later, earlier], [earlier, later]):
        ledger = ledger_of(*order)
        assert total(ledger, "bookings_acv") == 12000
        assert (
            ledger.buckets.total("bookings", ALL, Window("d", day("2024-03-10"), day("2024-03-10")))
            == 1
        )
        assert [c.arr for c in ledger.booked_contracts()] == [D(12000)]


@pytest.mark.parametrize(
    ("age", "outcome"),
    [
        (dt.timedelta(days=0), Outcome.APPLIED),
        (dt.timedelta(days=7), Outcome.APPLIED),  # exactly the allowed lateness
        (dt.timedelta(days=7, seconds=1), Outcome.LATE),
        (dt.timedelta(days=30), Outcome.LATE),
    ],
)
def test_late_events(age: dt.timedelta, outcome: Outcome) -> None:
    ledger = ledger_of(spend("s1", "organic", "100", "2024-03-20"))
    watermark = ledger.watermark
    assert watermark == dt.datetime(2024, 3, 20, 12, tzinfo=dt.UTC)
    old = spend("s2", "organic", "50", "2024-03-20").model_copy(
        update={"occurred_at": watermark - age}
    )
    assert ledger.apply(old) is outcome
    expected = D(150) if outcome is Outcome.APPLIED else D(100)
    assert total(ledger, "spend") == expected
    assert ledger.watermark == watermark
    assert ledger.accepted_count == (2 if outcome is Outcome.APPLIED else 1)


def test_a_late_event_is_not_remembered_as_seen() -> None:
    ledger = ledger_of(spend("s1", "organic", "100", "2024-03-20"))
    late = spend("s2", "organic", "50", "2024-03-01")
    assert ledger.apply(late) is Outcome.LATE
    assert ledger.apply(late) is Outcome.LATE
    ledger.restore(late)  # recovery of an event accepted before: no lateness check
    assert total(ledger, "spend") == 150
    assert ledger.apply(late) is Outcome.DUPLICATE


def test_lateness_is_a_policy() -> None:
    policy = MetricPolicy(lateness=dt.timedelta(days=60))
    ledger = ledger_of(spend("s1", "organic", "100", "2024-03-20"), policy=policy)
    assert ledger.apply(spend("s2", "organic", "50", "2024-02-01")) is Outcome.APPLIED


def test_the_watermark_is_the_largest_occurred_at() -> None:
    ledger = ledger_of(
        lead("e1", "L1", "2024-03-10"),
        lead("e2", "L2", "2024-03-15"),
        lead("e3", "L3", "2024-03-12"),
    )
    assert ledger.watermark == dt.datetime(2024, 3, 15, 12, tzinfo=dt.UTC)
    assert Ledger(MetricPolicy()).watermark is None


# -- currency ---------------------------------------------------------------------

FX = MetricPolicy(fx_rates={"EUR": D("1.1"), "GBP": D("1.25")})


@pytest.mark.parametrize(
    "event",
    [
        lead("e1", "L1", "2024-03-10"),
        conversion("c1", "L1", "2024-03-10"),
        churn("x1", "A1", "2024-03-10"),
        contract("k1", "C1", "2024-03-10"),
        contract("k1", "C1", "2024-03-10", currency="USD"),
        contract("k1", "C1", "2024-03-10", currency="EUR"),
        spend("s1", "organic", "10", "2024-03-10", currency="GBP"),
        spend("s1", "organic", "10", "2024-03-10", currency="USD"),
    ],
)
def test_check_currency_accepts_known_currencies(event: Event) -> None:
    check_currency(event, FX)


@pytest.mark.parametrize(
    "event",
    [
        contract("k1", "C1", "2024-03-10", currency="JPY"),
        spend("s1", "organic", "10", "2024-03-10", currency="JPY"),
    ],
)
def test_check_currency_refuses_unknown_currencies(event: Event) -> None:
    with pytest.raises(InvalidEventError, match="JPY") as caught:
        check_currency(event, FX)
    assert [p.field for p in caught.value.problems] == ["data.currency"]


@pytest.mark.parametrize(
    "event",
    [
        contract("k1", "C1", "2024-03-10", currency="JPY"),
        spend("s1", "organic", "10", "2024-03-10", currency="JPY"),
    ],
)
def test_an_event_in_an_unknown_currency_leaves_the_ledger_untouched(event: Event) -> None:
    ledger = ledger_of(contract("k0", "C0", "2024-03-01"), policy=FX)
    with pytest.raises(InvalidEventError):
        ledger.apply(event)
    assert ledger.accepted_count == 1
    assert [c.contract_id for c in ledger.booked_contracts()] == ["C0"]
    assert total(ledger, "bookings") == 1
    assert total(ledger, "spend") == 0


@pytest.mark.parametrize(
    ("currency", "acv", "tcv", "arr"),
    [
        (None, D(8000), D(25500), D(8000)),
        ("USD", D(8000), D(25500), D(8000)),
        ("EUR", D(8800), D(28050), D(8800)),
        ("GBP", D(10000), D("31875"), D(10000)),
    ],
)
def test_contract_values_in_the_reporting_currency(
    currency: str | None, acv: Decimal, tcv: Decimal, arr: Decimal
) -> None:
    event = contract(
        "k1",
        "C1",
        "2024-03-10",
        term_months=36,
        recurring_value="24000",
        one_time_fees="1500",
        currency=currency,
    )
    assert isinstance(event, ContractSigned)
    assert Ledger(FX).contract_values(event) == (acv, tcv, arr)


def test_spend_is_converted() -> None:
    ledger = ledger_of(
        spend("s1", "organic", "1000", "2024-03-10", currency="EUR"),
        spend("s2", "organic", "100", "2024-03-11"),
        policy=FX,
    )
    assert total(ledger, "spend") == D(1200)
    assert total(ledger, "spend", ("channel", "organic")) == D(1200)


@pytest.mark.parametrize(
    ("include_fees", "sub_year", "term_months", "recurring", "fees", "acv", "arr"),
    [
        (False, "annualize", 36, "24000", "1500", D(8000), D(8000)),
        (True, "annualize", 36, "24000", "1500", D(8500), D(8000)),
        (False, "annualize", 6, "4000", "0", D(8000), D(8000)),
        (False, "cap_at_tcv", 6, "4000", "0", D(4000), D(8000)),
    ],
)
def test_policies_change_acv_never_arr(
    include_fees: bool,
    sub_year: SubYearPolicy,
    term_months: int,
    recurring: str,
    fees: str,
    acv: Decimal,
    arr: Decimal,
) -> None:
    policy = MetricPolicy(include_one_time_fees=include_fees, sub_year=sub_year)
    event = contract(
        "k1",
        "C1",
        "2024-03-10",
        term_months=term_months,
        recurring_value=recurring,
        one_time_fees=fees,
    )
    ledger = ledger_of(event, policy=policy)
    assert total(ledger, "bookings_acv") == acv
    assert [c.arr for c in ledger.booked_contracts()] == [arr]


# -- attribution and restatement --------------------------------------------------------


def test_attribution_falls_back_to_unknown() -> None:
    ledger = ledger_of(contract("k1", "C1", "2024-03-10", lead_id="NOPE"))
    assert ledger.lead_attribution("NOPE") == ("unknown", "unknown")
    assert ledger.lead_attribution(None) == ("unknown", "unknown")
    assert total(ledger, "bookings", ("origin", "unknown")) == 1
    assert total(ledger, "bookings", ("channel", "unknown")) == 1


@pytest.mark.parametrize(
    ("origin", "channel", "expected"),
    [
        (None, None, ("marketing", "paid_search")),
        ("partner", None, ("partner", "paid_search")),
        (None, "referral", ("marketing", "referral")),
        ("sales", "outbound", ("sales", "outbound")),
    ],
)
def test_a_contract_own_attribution_wins_over_its_lead(
    origin: str | None, channel: str | None, expected: tuple[str, str]
) -> None:
    signed = contract("k1", "C1", "2024-03-10", lead_id="L1", origin=origin, channel=channel)
    ledger = ledger_of(lead("e1", "L1", "2024-03-01"), signed)
    assert isinstance(signed, ContractSigned)
    assert ledger.contract_attribution(signed) == expected
    assert total(ledger, "bookings", ("origin", expected[0])) == 1
    assert total(ledger, "bookings", ("channel", expected[1])) == 1


def test_a_contract_before_its_lead_is_restated_when_the_lead_arrives() -> None:
    ledger = ledger_of(
        contract("k1", "C1", "2024-03-10", lead_id="L1"),
        conversion("c1", "L1", "2024-03-09"),
    )
    assert total(ledger, "bookings", ("origin", "unknown")) == 1
    assert total(ledger, "conversions", ("channel", "unknown")) == 1
    assert ledger.buckets.segments("bookings") == {
        ALL,
        ("origin", "unknown"),
        ("channel", "unknown"),
    }

    # the lead arrives late (within the allowed lateness)
    assert ledger.apply(lead("e1", "L1", "2024-03-05", channel="events")) is Outcome.APPLIED
    for metric in ("bookings", "new_customers", "conversions"):
        assert total(ledger, metric, ("origin", "marketing")) == 1
        assert total(ledger, metric, ("channel", "events")) == 1
        assert total(ledger, metric, ("origin", "unknown")) == 0
        assert total(ledger, metric, ("channel", "unknown")) == 0
        assert total(ledger, metric) == 1
    assert total(ledger, "new_acv", ("origin", "marketing")) == 12000
    # the restated-away segment is gone, not left behind as zeros
    assert ledger.buckets.segments("bookings") == {
        ALL,
        ("origin", "marketing"),
        ("channel", "events"),
    }


def test_an_earlier_lead_event_restates_the_attribution() -> None:
    ledger = ledger_of(
        lead("e2", "L1", "2024-03-08", origin="sales", channel="outbound"),
        contract("k1", "C1", "2024-03-10", lead_id="L1"),
        lead("e1", "L1", "2024-03-05", origin="marketing", channel="organic"),
    )
    assert total(ledger, "leads") == 1
    assert total(ledger, "bookings", ("origin", "marketing")) == 1
    assert total(ledger, "bookings", ("origin", "sales")) == 0
    assert total(ledger, "leads", ("channel", "organic")) == 1


def test_counts_by_segment() -> None:
    ledger = ledger_of(
        lead("e1", "L1", "2024-03-01", estimated_value="1000"),
        lead("e2", "L2", "2024-03-02", origin="sales", channel="outbound", estimated_value="250.5"),
        lead("e3", "L3", "2024-03-03"),
        conversion("c1", "L1", "2024-03-04"),
        contract("k1", "C1", "2024-03-05", lead_id="L1", kind="renewal"),
        spend("s1", "paid_search", "300", "2024-03-05"),
    )
    assert total(ledger, "leads") == 3
    assert total(ledger, "leads", ("origin", "marketing")) == 2
    assert total(ledger, "leads", ("channel", "outbound")) == 1
    assert total(ledger, "lead_value") == D("1250.5")
    assert total(ledger, "conversions", ("origin", "marketing")) == 1
    assert total(ledger, "bookings") == 1
    assert total(ledger, "new_customers") == 0  # a renewal is not a new customer
    assert total(ledger, "spend", ("channel", "paid_search")) == 300
    assert ledger.buckets.segments("spend") == {ALL, ("channel", "paid_search")}


def test_book_inputs() -> None:
    ledger = ledger_of(
        contract(
            "k2",
            "C2",
            "2024-03-02",
            account_id="A2",
            start_date="2024-04-01",
            term_months=24,
            recurring_value="30000",
            kind="expansion",
        ),
        contract("k1", "C1", "2024-03-01", term_months=6, recurring_value="4000"),
        churn("x2", "A2", "2024-03-20", contract_id="C2", effective_date="2024-09-01"),
        churn("x1", "A1", "2024-03-15"),
    )
    assert ledger.booked_contracts() == [
        BookedContract("C1", "A1", "new", day("2024-03-01"), 6, D(8000)),
        BookedContract("C2", "A2", "expansion", day("2024-04-01"), 24, D(15000)),
    ]
    assert ledger.churns() == [
        Churn("A1", None, day("2024-03-15")),
        Churn("A2", "C2", day("2024-09-01")),
    ]


def test_prune_drops_days_past_retention() -> None:
    policy = MetricPolicy(retention_days=30, lateness=dt.timedelta(days=3650))
    ledger = ledger_of(
        spend("s1", "organic", "100", "2024-01-01"),
        spend("s2", "organic", "10", "2024-03-01"),
        policy=policy,
    )
    everything = rolling(day("2024-03-31"), 365)
    ledger.prune(day("2024-03-31"))
    assert ledger.buckets.total("spend", ALL, everything) == 10
    ledger.prune(day("2024-05-01"))
    assert ledger.buckets.total("spend", ALL, everything) == 0
    assert ledger.buckets.segments("spend") == set()


def test_each_source_keeps_its_own_watermark_for_lateness() -> None:
    from models.ledger import Ledger, Outcome
    from models.policy import MetricPolicy
    from tests.unit.builders import lead

    ledger = Ledger(MetricPolicy(), sources=("0", "1"))
    # source 0 races ahead; source 1 has not spoken: nothing can be judged late yet
    assert ledger.apply(lead("a", "A", "2026-06-01"), "0") is Outcome.APPLIED
    assert ledger.lateness_mark() is None
    assert ledger.apply(lead("b", "B", "2026-01-01"), "1") is Outcome.APPLIED
    # the mark is the slowest source's watermark: January, not June
    assert ledger.lateness_mark() is not None
    assert ledger.lateness_mark().date().isoformat() == "2026-01-01"  # type: ignore[union-attr]
    assert ledger.apply(lead("c", "C", "2025-12-28"), "0") is Outcome.APPLIED  # 4 days behind
    assert ledger.apply(lead("d", "D", "2025-12-20"), "0") is Outcome.LATE  # 12 days behind
    assert ledger.watermark is not None and ledger.watermark.month == 6  # the clock: the max


def test_a_single_source_is_the_plain_watermark_rule() -> None:
    from models.ledger import Ledger, Outcome
    from models.policy import MetricPolicy
    from tests.unit.builders import lead

    ledger = Ledger(MetricPolicy())
    assert ledger.apply(lead("a", "A", "2026-06-01")) is Outcome.APPLIED
    assert ledger.apply(lead("b", "B", "2026-05-20")) is Outcome.LATE


def test_lateness_mark_is_the_slowest_source_after_any_sequence() -> None:
    """The kept mark equals the minimum of the sources' watermarks, recomputed by hand."""
    import random

    rng = random.Random(11)
    sources = ("0", "1", "2")
    policy = MetricPolicy(lateness=dt.timedelta(days=400))  # nothing is late here
    for _run in range(50):
        ledger = Ledger(policy, sources=sources)
        marks: dict[str, dt.datetime] = {}
        for index in range(40):
            source = rng.choice(sources)
            when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=rng.randrange(90))
            event = lead(f"e{index}", f"L{index}", when.date().isoformat())
            assert ledger.apply(event, source) is Outcome.APPLIED
            marks[source] = max(marks.get(source, event.occurred_at), event.occurred_at)
            expected = min(marks.values()) if len(marks) == len(sources) else None
            assert ledger.lateness_mark() == expected


# -- defence in depth: an event the ledger cannot hold changes nothing ---------------------


def _unchecked(event: Event, **changes: Any) -> Event:
    """``event`` with fields (``data.x`` or envelope) replaced, bypassing the contract."""
    data_changes = {k.removeprefix("data_"): v for k, v in changes.items() if k.startswith("data_")}
    envelope = {k: v for k, v in changes.items() if not k.startswith("data_")}
    data = event.data.model_copy(update=data_changes)
    return event.model_copy(update={**envelope, "data": data})


def _snapshot(ledger: Ledger) -> tuple[object, ...]:
    return (
        ledger.accepted_count,
        ledger.watermark,
        ledger.lateness_mark(),
        ledger.buckets.as_dict(),
        ledger.booked_contracts(),
        ledger.churns(),
        ledger.admitted_channels,
    )


_MINUS_ONE_HOUR = dt.timezone(-dt.timedelta(hours=1))
POISON: list[tuple[Event, str]] = [
    (_unchecked(contract("p1", "C9", "2024-03-12"), data_start_date=day("9999-12-31")),
     "data.term_months"),
    (_unchecked(contract("p1", "C9", "2024-03-12"), data_term_months=10**6),
     "data.term_months"),
    (_unchecked(contract("p1", "C9", "2024-03-12"), data_recurring_value=D("1E+70")),
     "data.recurring_value"),
    (_unchecked(contract("p1", "C9", "2024-03-12", channel="fresh"), data_term_months=0),
     "data.recurring_value"),
    (_unchecked(lead("p1", "L9", "2024-03-12", channel="fresh"),
                data_estimated_value=D("1E+70")), "data.estimated_value"),
    (_unchecked(spend("p1", "fresh", "1", "2024-03-12"), data_amount=D("1E+70")),
     "data.amount"),
    (_unchecked(conversion("p1", "L9", "2024-03-12"),
                occurred_at=dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=_MINUS_ONE_HOUR)),
     "occurred_at"),
    (_unchecked(churn("p1", "A1", "2024-03-12"),
                occurred_at=dt.datetime(3000, 1, 1, tzinfo=dt.UTC)), "occurred_at"),
    (_unchecked(churn("p1", "A1", "2024-03-12"), occurred_at=dt.datetime(2024, 3, 12)),
     "occurred_at"),
]  # fmt: skip


@pytest.mark.parametrize(("poison", "field"), POISON)
@pytest.mark.parametrize("how", ["apply", "restore"])
def test_an_event_that_cannot_be_held_leaves_the_ledger_as_it_was(
    poison: Event, field: str, how: str
) -> None:
    ledger = ledger_of(
        lead("e1", "L1", "2024-03-10", estimated_value="100"),
        contract("k1", "C1", "2024-03-11", lead_id="L1"),
        churn("x1", "A2", "2024-03-11"),
        spend("s1", "organic", "10", "2024-03-11"),
        policy=MetricPolicy(max_channels=2),
    )
    before = _snapshot(ledger)
    with pytest.raises(InvalidEventError) as caught:
        getattr(ledger, how)(poison)
    assert [problem.field for problem in caught.value.problems] == [field]
    assert "cannot hold" in str(caught.value) or "between" in str(caught.value)
    assert _snapshot(ledger) == before
    assert ledger.take_overflowed_channels() == []
    # the same id is still free, and the ledger goes on
    later = contract("p1", "C2", "2024-03-13", account_id="A3", recurring_value="6000")
    assert ledger.apply(later) is Outcome.APPLIED
    assert total(ledger, "bookings") == 2
    points = compute_points(ledger, dt.date(2024, 3, 31))
    assert value(points, "arr", "point") == D(18000)


def test_a_contract_at_every_bound_is_held_and_computed() -> None:
    last_start = contract(
        "k1", "C1", "2199-12-01", start_date="2099-12-31", term_months=1200,
        recurring_value="1000000000000", one_time_fees="1000000000000",
    )  # fmt: skip
    short = contract(
        "k2", "C2", "2199-12-01", start_date="2199-11-30", term_months=1,
        recurring_value="999999999999.999999",
    )  # fmt: skip
    ledger = ledger_of(last_start, short, policy=MetricPolicy(fx_rates={"EUR": D("1.08")}))
    assert ledger.booked_contract("C1").term_end == day("2199-12-31")
    assert ledger.booked_contract("C2").term_end == day("2199-12-30")
    points = compute_points(ledger, day("2199-12-29"))
    assert value(points, "arr", "point") == D("10000000000") + D("11999999999999.999988")
    assert value(points, "bookings_tcv", "30d") == D("2999999999999.999999")


# -- conflicting duplicates -----------------------------------------------------------------


def test_a_re_send_written_differently_is_a_duplicate() -> None:
    first = parse_event(
        raw_event("spend.recorded", "s1", "2024-03-10T12:00:00Z",
                  {"channel": "organic", "amount": "10", "currency": "USD"})
    )  # fmt: skip
    again = parse_event(
        raw_event("spend.recorded", "s1", "2024-03-10T14:00:00+02:00",
                  {"channel": "Organic", "amount": "1.0E+1", "currency": "USD"})
    )  # fmt: skip
    ledger = ledger_of(first)
    assert ledger.apply(again) is Outcome.DUPLICATE


def test_the_same_id_with_other_content_is_a_conflict_and_the_first_counts() -> None:
    ledger = ledger_of(spend("s1", "organic", "10", "2024-03-10"))
    assert ledger.apply(spend("s1", "organic", "11", "2024-03-10")) is Outcome.CONFLICT
    assert ledger.apply(spend("s1", "organic", "10", "2024-03-10")) is Outcome.DUPLICATE
    assert ledger.accepted_count == 1
    assert total(ledger, "spend") == 10


def test_a_conflict_is_found_even_when_the_repeat_is_late() -> None:
    ledger = ledger_of(spend("s1", "organic", "10", "2024-01-10"), lead("e2", "L1", "2024-03-30"))
    assert ledger.apply(spend("s1", "organic", "99", "2024-01-10")) is Outcome.CONFLICT


def test_restore_records_what_each_event_said() -> None:
    ledger = Ledger(MetricPolicy())
    assert ledger.restore(spend("s1", "organic", "10", "2024-03-10")) is Outcome.APPLIED
    assert ledger.restore(spend("s1", "organic", "10", "2024-03-10")) is Outcome.DUPLICATE
    assert ledger.restore(spend("s1", "events", "10", "2024-03-10")) is Outcome.CONFLICT
    assert ledger.apply(spend("s1", "organic", "10", "2024-03-11")) is Outcome.CONFLICT
    assert total(ledger, "spend", ("channel", "organic")) == 10
    assert total(ledger, "spend", ("channel", "events")) == 0


def test_prune_says_how_many_days_it_dropped_and_drops_none_twice() -> None:
    policy = MetricPolicy(retention_days=30, lateness=dt.timedelta(days=3650))
    ledger = ledger_of(
        spend("s1", "organic", "100", "2024-01-01"),
        spend("s2", "organic", "10", "2024-03-01"),
        policy=policy,
    )
    assert ledger.prune(day("2024-03-31")) == 1  # 2024-01-01 is past the retention
    assert ledger.prune(day("2024-03-31")) == 0  # the same day again: nothing to do
    assert ledger.prune(day("2024-04-01")) == 1  # the next day: 2024-03-01 leaves


def test_a_delta_holds_each_contract_changed_as_booked_now() -> None:
    ledger = ledger_of(contract("k2", "C1", "2024-03-15", recurring_value="99000"))
    first = ledger.take_delta()
    assert set(first.contracts) == {"C1"}
    assert first.contracts["C1"].arr == Decimal("99000")
    assert ledger.take_delta().contracts == {}  # taken: not sent again
    ledger.apply(contract("k1", "C1", "2024-03-10", recurring_value="12000"))  # earlier
    ledger.apply(contract("k3", "C1", "2024-03-20", recurring_value="5"))  # later: no change
    restated = ledger.take_delta().contracts
    assert restated == {"C1": ledger.booked_contract("C1")}
    assert restated["C1"].arr == Decimal("12000")
