"""The streaming ledger against the batch oracle: the same events give the same points.

Whatever order the events arrive in (sorted, shuffled within the allowed lateness,
re-sent, split over partitions and interleaved), ``compute_points`` on a ``Ledger``
must equal ``compute_oracle`` on the events the ledger accepted.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.oracle import compute_oracle
from models.events import ORIGINS, CustomerChurned, Event, parse_event
from models.ledger import Ledger, Outcome
from models.policy import MetricPolicy
from models.series import MetricPoint, compute_points
from streams.kafka.keys import partition_key

EPOCH = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
SPAN_HOURS = 730 * 24
# a busy fortnight, so that events often fall within the lateness of each other
BUSY_HOURS = (300 * 24, 314 * 24)
ZONES = (
    dt.UTC,
    dt.timezone(dt.timedelta(hours=5, minutes=30)),
    dt.timezone(dt.timedelta(hours=-8)),
    dt.timezone(dt.timedelta(hours=14)),
)
CHANNELS = ("paid_search", "organic", "events", "referral", "outbound")
LEAD_IDS = tuple(f"L{i}" for i in range(8))
CONTRACT_IDS = tuple(f"C{i}" for i in range(8))
ACCOUNT_IDS = tuple(f"A{i}" for i in range(4))
FX_RATES = {"EUR": Decimal("1.08"), "GBP": Decimal("1.2675")}
CURRENCIES = ("USD", "EUR", "GBP")

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# -- strategies -------------------------------------------------------------------


def _money(max_units: int) -> st.SearchStrategy[Decimal]:
    """A non-negative amount with two decimals."""
    return st.integers(0, max_units * 100).map(
        lambda cents: Decimal(f"{cents // 100}.{cents % 100:02d}")
    )


hours = st.one_of(st.integers(0, SPAN_HOURS), st.integers(*BUSY_HOURS))
occurred_at = st.builds(
    lambda h, minute, zone: (EPOCH + dt.timedelta(hours=h, minutes=minute)).astimezone(zone),
    hours,
    st.sampled_from((0, 0, 0, 30, 59)),
    st.sampled_from(ZONES),
)
dates = st.integers(-60, 800).map(lambda d: EPOCH.date() + dt.timedelta(days=d))


def _data(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A ``data`` object; a field drawn as None is left out."""
    return st.fixed_dictionaries(fields).map(
        lambda d: {key: value for key, value in d.items() if value is not None}
    )


lead_created = _data(
    lead_id=st.sampled_from(LEAD_IDS),
    channel=st.sampled_from(CHANNELS),
    origin=st.sampled_from(ORIGINS),
    campaign=st.none() | st.sampled_from(("spring", "launch")),
    estimated_value=st.none() | _money(200_000),
)
lead_converted = _data(
    lead_id=st.sampled_from(LEAD_IDS),
    account_id=st.none() | st.sampled_from(ACCOUNT_IDS),
)
contract_signed = _data(
    contract_id=st.sampled_from(CONTRACT_IDS),
    account_id=st.sampled_from(ACCOUNT_IDS),
    lead_id=st.none() | st.sampled_from((*LEAD_IDS, "L-missing")),
    origin=st.none() | st.sampled_from(ORIGINS),
    channel=st.none() | st.sampled_from(CHANNELS),
    kind=st.none() | st.sampled_from(("new", "new", "renewal", "expansion")),
    start_date=dates.map(dt.date.isoformat),
    term_months=st.integers(1, 36),
    recurring_value=_money(3_000_000),
    one_time_fees=st.none() | _money(50_000),
    currency=st.none() | st.sampled_from(CURRENCIES),
)
customer_churned = _data(
    account_id=st.sampled_from(ACCOUNT_IDS),
    contract_id=st.none() | st.sampled_from(CONTRACT_IDS),
    effective_date=st.none() | dates.map(dt.date.isoformat),
)
spend_recorded = _data(
    channel=st.sampled_from(CHANNELS),
    amount=_money(100_000),
    currency=st.sampled_from(CURRENCIES),
)
typed_data = st.one_of(
    st.tuples(st.just("lead.created"), lead_created),
    st.tuples(st.just("lead.converted"), lead_converted),
    st.tuples(st.just("contract.signed"), contract_signed),
    st.tuples(st.just("customer.churned"), customer_churned),
    st.tuples(st.just("spend.recorded"), spend_recorded),
)


# most contracts start near the day they are signed, most churns take effect near the
# day they are reported; the rest are drawn from the whole span (backdated, far ahead)
near_days = st.none() | st.integers(-20, 60)
_DATE_FIELD = {"contract.signed": "start_date", "customer.churned": "effective_date"}


@st.composite
def event_logs(draw: st.DrawFn) -> list[Event]:
    """A small, realistic log of distinct events (unique ``event_id``), in no order."""
    drawn = draw(st.lists(st.tuples(typed_data, occurred_at, near_days), min_size=8, max_size=50))
    events = []
    for index, ((type_, data), when, near) in enumerate(drawn):
        field = _DATE_FIELD.get(type_)
        if field is not None and near is not None and field in data:
            data = {**data, field: (when.date() + dt.timedelta(days=near)).isoformat()}
        raw = {
            "event_id": f"ev-{index:03d}",
            "type": type_,
            "occurred_at": when.isoformat(),
            "source": "hubspot",
            "data": data,
        }
        events.append(parse_event(raw))
    return events


policies = st.builds(
    MetricPolicy,
    include_one_time_fees=st.booleans(),
    sub_year=st.sampled_from(("annualize", "cap_at_tcv")),
    fx_rates=st.just(FX_RATES),
)


def _by_time(events: Sequence[Event]) -> list[Event]:
    return sorted(events, key=lambda e: e.occurred_at)


def within_lateness(
    data: st.DataObject, events: Sequence[Event], lateness: dt.timedelta
) -> list[Event]:
    """An arrival order where no event is late: each arrives within ``lateness`` of its time.

    Sorting by ``occurred_at + delay`` with ``0 <= delay <= lateness`` means every event
    that arrived before ``e`` occurred no later than ``e.occurred_at + lateness``.
    """
    limit = int(lateness.total_seconds())
    delays = data.draw(
        st.lists(
            st.one_of(st.just(0), st.just(limit), st.integers(0, limit)),
            min_size=len(events),
            max_size=len(events),
        )
    )
    keyed = sorted(
        zip(events, delays, strict=True),
        key=lambda pair: pair[0].occurred_at + dt.timedelta(seconds=pair[1]),
    )
    return [event for event, _ in keyed]


def with_duplicates(data: st.DataObject, events: list[Event]) -> tuple[list[Event], int]:
    """The same log with some events re-sent (same ``event_id``) at random later points."""
    stream = list(events)
    resent = data.draw(st.lists(st.sampled_from(events), max_size=8))
    for event in resent:
        first = stream.index(event)
        stream.insert(data.draw(st.integers(first + 1, len(stream))), event)
    return stream, len(resent)


def interleaved(data: st.DataObject, events: Sequence[Event], partitions: int) -> list[Event]:
    """Split by Kafka key over ``partitions`` and merge in a random order, each in order."""
    queues: list[list[Event]] = [[] for _ in range(partitions)]
    for event in events:
        queues[zlib.crc32(partition_key(event).encode()) % partitions].append(event)
    merged: list[Event] = []
    while any(queues):
        ready = [queue for queue in queues if queue]
        merged.append(ready[data.draw(st.integers(0, len(ready) - 1))].pop(0))
    return merged


# -- checks -----------------------------------------------------------------------


def as_of_days(events: Sequence[Event], extra: dt.date) -> list[dt.date]:
    """Days to read the metrics on: inside the span, its end, after it, far ahead, and
    just after a churn takes effect (so that churn rate and LTV get defined values)."""
    days = sorted(e.occurred_day for e in events)
    last = days[-1]
    churns = [e.effective_date for e in events if isinstance(e, CustomerChurned)]
    return sorted(
        {
            days[len(days) // 2],
            last,
            extra,
            last + dt.timedelta(days=45),
            last + dt.timedelta(days=1000),  # contracted ARR only
            *(day + dt.timedelta(days=10) for day in churns[:2]),
        }
    )


def feed(ledger: Ledger, stream: Sequence[Event]) -> list[Outcome]:
    return [ledger.apply(event) for event in stream]


def assert_same_points(streamed: list[MetricPoint], expected: list[MetricPoint]) -> None:
    got = {p.series_id: p for p in streamed}
    want = {p.series_id: p for p in expected}
    assert len(got) == len(streamed), "compute_points repeated a series"
    assert len(want) == len(expected), "compute_oracle repeated a series"
    assert sorted(got) == sorted(want), (
        f"only streamed: {sorted(set(got) - set(want))}; "
        f"only oracle: {sorted(set(want) - set(got))}"
    )
    wrong = [(got[key], want[key]) for key in sorted(got) if got[key] != want[key]]
    assert not wrong, f"{len(wrong)} points differ, first: {wrong[0]}"


def assert_matches_oracle(
    ledger: Ledger, accepted: Sequence[Event], policy: MetricPolicy, extra: dt.date
) -> None:
    for as_of in as_of_days(accepted, extra):
        assert_same_points(compute_points(ledger, as_of), compute_oracle(accepted, as_of, policy))


extra_days = st.integers(-30, 800).map(lambda d: EPOCH.date() + dt.timedelta(days=d))


# -- properties ---------------------------------------------------------------------


@SETTINGS
@given(events=event_logs(), policy=policies, extra=extra_days)
def test_in_time_order(events: list[Event], policy: MetricPolicy, extra: dt.date) -> None:
    ledger = Ledger(policy)
    outcomes = feed(ledger, _by_time(events))
    assert set(outcomes) == {Outcome.APPLIED}
    assert_matches_oracle(ledger, events, policy, extra)


@SETTINGS
@given(data=st.data(), events=event_logs(), policy=policies, extra=extra_days)
def test_shuffled_within_lateness(
    data: st.DataObject, events: list[Event], policy: MetricPolicy, extra: dt.date
) -> None:
    stream = within_lateness(data, _by_time(events), policy.lateness)
    ledger = Ledger(policy)
    outcomes = feed(ledger, stream)
    assert Outcome.LATE not in outcomes
    assert_matches_oracle(ledger, events, policy, extra)


@SETTINGS
@given(data=st.data(), events=event_logs(), policy=policies, extra=extra_days)
def test_duplicates_count_once(
    data: st.DataObject, events: list[Event], policy: MetricPolicy, extra: dt.date
) -> None:
    in_time = within_lateness(data, _by_time(events), policy.lateness)
    stream, resent = with_duplicates(data, in_time)
    ledger = Ledger(policy)
    outcomes = feed(ledger, stream)
    assert outcomes.count(Outcome.DUPLICATE) == resent
    assert Outcome.LATE not in outcomes
    assert ledger.accepted_count == len(events)
    # the oracle gets the re-sent events too: it must dedupe them itself
    assert_matches_oracle(ledger, stream, policy, extra)


@SETTINGS
@given(
    data=st.data(),
    events=event_logs(),
    policy=policies,
    lateness_days=st.sampled_from((1, 7, 10_000)),
    partitions=st.integers(1, 4),
    extra=extra_days,
)
def test_partitions_interleaved(
    data: st.DataObject,
    events: list[Event],
    policy: MetricPolicy,
    lateness_days: int,
    partitions: int,
    extra: dt.date,
) -> None:
    policy = MetricPolicy(
        include_one_time_fees=policy.include_one_time_fees,
        sub_year=policy.sub_year,
        fx_rates=policy.fx_rates,
        lateness=dt.timedelta(days=lateness_days),
    )
    produced, _ = with_duplicates(data, _by_time(events))
    stream = interleaved(data, produced, partitions)
    ledger = Ledger(policy)
    outcomes = feed(ledger, stream)

    # what the ledger must have accepted: the first copy of each event, unless it came
    # later than the lateness behind the newest event accepted before it
    accepted: list[Event] = []
    seen: set[str] = set()
    watermark: dt.datetime | None = None
    for event, outcome in zip(stream, outcomes, strict=True):
        if event.event_id in seen:
            assert outcome is Outcome.DUPLICATE
        elif watermark is not None and event.occurred_at < watermark - policy.lateness:
            assert outcome is Outcome.LATE
        else:
            assert outcome is Outcome.APPLIED
            seen.add(event.event_id)
            accepted.append(event)
            watermark = max(watermark or event.occurred_at, event.occurred_at)
    if lateness_days == 10_000:
        assert len(accepted) == len(events)
    assert_matches_oracle(ledger, accepted, policy, extra)


capped_policies = st.builds(
    MetricPolicy,
    include_one_time_fees=st.booleans(),
    sub_year=st.sampled_from(("annualize", "cap_at_tcv")),
    fx_rates=st.just(FX_RATES),
    max_channels=st.integers(0, len(CHANNELS) - 1),
    channel_allowlist=st.one_of(
        st.just(frozenset()), st.frozensets(st.sampled_from(CHANNELS), max_size=3)
    ),
)


@SETTINGS
@given(data=st.data(), events=event_logs(), policy=capped_policies, extra=extra_days)
def test_capped_channels_in_application_order(
    data: st.DataObject, events: list[Event], policy: MetricPolicy, extra: dt.date
) -> None:
    """Past the cap, which channels keep a label depends on the order events are applied
    in: the oracle, given them in that order (re-sends included), admits the same."""
    in_time = within_lateness(data, _by_time(events), policy.lateness)
    stream, resent = with_duplicates(data, in_time)
    ledger = Ledger(policy)
    outcomes = feed(ledger, stream)
    assert outcomes.count(Outcome.DUPLICATE) == resent
    assert Outcome.LATE not in outcomes
    admitted = set(ledger.admitted_channels)
    if policy.channel_allowlist:
        assert admitted <= policy.channel_allowlist
    else:
        assert len(admitted) <= policy.max_channels
    assert_matches_oracle(ledger, stream, policy, extra)


# -- examples -----------------------------------------------------------------------


def _event(event_id: str, type_: str, when: str, **data: Any) -> Event:
    return parse_event({"event_id": event_id, "type": type_, "occurred_at": when, "data": data})


def test_a_conversion_restated_by_its_lead_leaves_no_unknown_segment() -> None:
    """A conversion that comes before its lead counts as unknown, then moves to the lead's."""
    lead = _event(
        "e1",
        "lead.created",
        "2024-03-01T10:00:00+00:00",
        lead_id="L1",
        channel="organic",
        origin="marketing",
    )
    conversion = _event("e2", "lead.converted", "2024-03-02T10:00:00+00:00", lead_id="L1")
    policy = MetricPolicy()
    expected = compute_oracle([lead, conversion], dt.date(2024, 3, 5), policy)
    assert not [p for p in expected if "unknown" in (p.origin, p.channel)]
    for stream in ([lead, conversion], [conversion, lead]):
        ledger = Ledger(policy)
        assert feed(ledger, stream) == [Outcome.APPLIED, Outcome.APPLIED]
        assert_same_points(compute_points(ledger, dt.date(2024, 3, 5)), expected)


def test_a_contract_without_a_known_lead_is_unknown() -> None:
    contract = _event(
        "e1",
        "contract.signed",
        "2024-03-01T10:00:00-08:00",
        contract_id="C1",
        account_id="A1",
        lead_id="L9",
        start_date="2024-03-01",
        term_months=12,
        recurring_value="120000.00",
    )
    points = {
        p.series_id: p.value
        for p in compute_oracle([contract], dt.date(2024, 3, 31), MetricPolicy())
    }
    assert points["bookings|month|unknown|all"] == 1
    assert points["new_acv|month|all|unknown"] == Decimal("120000")
    assert points["arr|point|all|all"] == Decimal("120000")
    assert points["cac|month|all|unknown"] == 0  # no spend, one new customer
    assert points["roas|month|all|unknown"] is None  # no spend: undefined, not 0


def test_churn_rate_and_ltv_after_an_account_churns() -> None:
    old = _event(
        "e1", "contract.signed", "2022-06-01T09:00:00+00:00",
        contract_id="C1", account_id="A1", start_date="2022-06-01",
        term_months=24, recurring_value="240000.00",
    )  # fmt: skip
    new = _event(
        "e2", "contract.signed", "2023-12-01T09:00:00+00:00",
        contract_id="C2", account_id="A2", start_date="2023-12-01",
        term_months=12, recurring_value="60000.00", one_time_fees="5000.00",
    )  # fmt: skip
    churn = _event(
        "e3", "customer.churned", "2023-09-20T09:00:00+00:00",
        account_id="A1", effective_date="2023-10-01",
    )  # fmt: skip
    as_of, policy = dt.date(2023, 12, 15), MetricPolicy()
    expected = compute_oracle([old, new, churn], as_of, policy)
    values = {p.series_id: p.value for p in expected}
    assert values["arr|point|all|all"] == Decimal("60000")
    assert values["arr_churned|90d|all|all"] == Decimal("120000")
    assert values["customer_churn_rate|point|all|all"] == 1
    assert values["ltv|point|all|all"] == Decimal("60000")
    ledger = Ledger(policy)
    assert feed(ledger, [old, churn, new]) == [Outcome.APPLIED] * 3
    assert_same_points(compute_points(ledger, as_of), expected)
