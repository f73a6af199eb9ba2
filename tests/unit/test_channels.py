"""Bounded channel cardinality: the admission rule, in the ledger and in the oracle."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from builders import contract, conversion, lead, spend

from bench.oracle import compute_oracle
from models.buckets import ALL
from models.channels import OVERFLOW_CHANNEL, ChannelAdmission
from models.errors import ConfigError
from models.events import Event
from models.ledger import Ledger, Outcome
from models.policy import MetricPolicy
from models.series import MetricPoint, compute_points
from models.windows import Window

MARCH = Window("month", dt.date(2024, 3, 1), dt.date(2024, 3, 31))
AS_OF = dt.date(2024, 3, 31)
CHANNELS = ("paid_search", "organic", "events", "referral", "outbound")


def five_channels() -> list[Event]:
    """A lead, a conversion, a contract and spend in each of five channels, in order."""
    events: list[Event] = []
    for index, channel in enumerate(CHANNELS):
        day = f"2024-03-{10 + index:02d}"
        events += [
            lead(f"l{index}", f"L{index}", day, channel=channel, estimated_value="100"),
            conversion(f"v{index}", f"L{index}", day),
            contract(f"k{index}", f"C{index}", day, lead_id=f"L{index}", account_id=f"A{index}"),
            spend(f"s{index}", channel, "50", day),
        ]
    return events


def applied(events: list[Event], policy: MetricPolicy) -> Ledger:
    ledger = Ledger(policy)
    assert {ledger.apply(event) for event in events} == {Outcome.APPLIED}
    return ledger


def channel_series(points: list[MetricPoint]) -> set[str]:
    return {p.channel for p in points if p.channel != "all"}


def by_series(points: list[MetricPoint]) -> dict[str, Decimal | None]:
    return {p.series_id: p.value for p in points}


# -- the rule ------------------------------------------------------------------------


def test_the_first_channels_up_to_the_cap_are_admitted() -> None:
    admission = ChannelAdmission(2)
    labels = [admission.admit(c) for c in ("a", "b", "a", "c", "b", "d", "c")]
    assert labels == ["a", "b", "a", OVERFLOW_CHANNEL, "b", OVERFLOW_CHANNEL, OVERFLOW_CHANNEL]
    assert admission.admitted == ("a", "b")
    assert admission.take_overflowed() == ["c", "d"]
    assert admission.take_overflowed() == []
    assert admission.admit("c") == OVERFLOW_CHANNEL
    assert admission.take_overflowed() == []  # reported once, ever
    assert admission.overflowed_count == 2


def test_label_only_looks() -> None:
    admission = ChannelAdmission(1)
    assert admission.label("a") == "a"
    assert admission.label("b") == "b"  # there is still room: nothing was admitted
    admission.admit("b")
    assert admission.label("a") == OVERFLOW_CHANNEL
    assert admission.take_overflowed() == []


def test_unknown_never_counts_toward_the_cap() -> None:
    admission = ChannelAdmission(1, ())
    assert admission.admit("unknown") == "unknown"
    assert admission.admit("a") == "a"
    assert admission.admit("unknown") == "unknown"
    assert admission.admit("b") == OVERFLOW_CHANNEL
    assert ChannelAdmission(0, {"a"}).admit("unknown") == "unknown"


def test_an_allowlist_admits_exactly_its_channels() -> None:
    admission = ChannelAdmission(1, {"Events", "organic"})
    labels = [admission.admit(c) for c in ("paid_search", "organic", "referral", "events")]
    assert labels == [OVERFLOW_CHANNEL, "organic", OVERFLOW_CHANNEL, "events"]
    assert admission.take_overflowed() == ["paid_search", "referral"]


@pytest.mark.parametrize(
    ("max_channels", "allowlist"), [(-1, ()), (10, ("organic", "overflow")), (10, ("ALL",))]
)
def test_an_impossible_rule_is_a_config_error(max_channels: int, allowlist: tuple[str]) -> None:
    with pytest.raises(ConfigError):
        ChannelAdmission(max_channels, allowlist)


# -- in the ledger ----------------------------------------------------------------------


def test_past_the_cap_channels_count_under_overflow_and_totals_stay_exact() -> None:
    events = five_channels()
    capped = applied(events, MetricPolicy(max_channels=3))
    uncapped = applied(events, MetricPolicy())
    points = compute_points(capped, AS_OF)
    assert channel_series(points) == {"paid_search", "organic", "events", OVERFLOW_CHANNEL}
    assert capped.admitted_channels == ("paid_search", "organic", "events")
    assert capped.take_overflowed_channels() == ["referral", "outbound"]
    assert capped.take_overflowed_channels() == []
    everything = by_series(compute_points(uncapped, AS_OF))
    for point in points:
        if point.channel == "all":
            assert point.value == everything[point.series_id], point.series_id
    overflow = ("channel", OVERFLOW_CHANNEL)
    for metric, amount in [("leads", 2), ("conversions", 2), ("bookings", 2), ("spend", 100)]:
        assert capped.buckets.total(metric, overflow, MARCH) == amount
        assert capped.buckets.total(metric, ALL, MARCH) == uncapped.buckets.total(
            metric, ALL, MARCH
        )


def test_contract_and_spend_channels_are_admitted_too() -> None:
    ledger = applied(
        [
            spend("s1", "tv", "10", "2024-03-10"),
            contract("k1", "C1", "2024-03-10", channel="radio"),
            lead("l1", "L1", "2024-03-10", channel="print"),
        ],
        MetricPolicy(max_channels=2),
    )
    assert ledger.admitted_channels == ("tv", "radio")
    assert ledger.take_overflowed_channels() == ["print"]
    assert ledger.buckets.total("leads", ("channel", OVERFLOW_CHANNEL), MARCH) == 1


def test_a_contract_without_a_lead_is_unknown_and_takes_no_place() -> None:
    ledger = applied(
        [
            contract("k1", "C1", "2024-03-10"),
            lead("l1", "L1", "2024-03-11", channel="organic"),
            lead("l2", "L2", "2024-03-11", channel="events"),
        ],
        MetricPolicy(max_channels=1),
    )
    assert ledger.buckets.total("bookings", ("channel", "unknown"), MARCH) == 1
    assert ledger.admitted_channels == ("organic",)
    assert ledger.take_overflowed_channels() == ["events"]


def test_with_an_allowlist_the_order_does_not_matter() -> None:
    policy = MetricPolicy(max_channels=1, channel_allowlist=frozenset({"organic", "referral"}))
    forward = compute_points(applied(five_channels(), policy), AS_OF)
    backward = compute_points(applied(five_channels()[::-1], policy), AS_OF)
    assert channel_series(forward) == {"organic", "referral", OVERFLOW_CHANNEL}
    assert by_series(forward) == by_series(backward)


def test_a_rebuild_in_the_same_order_admits_the_same_channels() -> None:
    events = five_channels()
    policy = MetricPolicy(max_channels=2)
    live = applied(events[::-1], policy)
    rebuilt = Ledger(policy)
    for event in events[::-1]:
        assert rebuilt.restore(event) is Outcome.APPLIED
    assert rebuilt.admitted_channels == live.admitted_channels == ("outbound", "referral")
    assert rebuilt.buckets.as_dict() == live.buckets.as_dict()
    assert rebuilt.take_overflowed_channels() == ["events", "organic", "paid_search"]


def test_an_event_that_fails_admits_nothing() -> None:
    ledger = Ledger(MetricPolicy(max_channels=1))
    with pytest.raises(Exception, match="no exchange rate"):
        ledger.apply(spend("s1", "tv", "10", "2024-03-10", currency="JPY"))
    ledger.apply(spend("s2", "radio", "10", "2024-03-10"))
    assert ledger.admitted_channels == ("radio",)


# -- the oracle applies the same rule -------------------------------------------------------


@pytest.mark.parametrize(
    "policy",
    [
        MetricPolicy(max_channels=3),
        MetricPolicy(max_channels=0),
        MetricPolicy(channel_allowlist=frozenset({"events", "nowhere"})),
    ],
)
@pytest.mark.parametrize("reverse", [False, True])
def test_the_oracle_admits_in_its_input_order(policy: MetricPolicy, reverse: bool) -> None:
    events = five_channels()[::-1] if reverse else five_channels()
    ledger = applied(events, policy)
    streamed = by_series(compute_points(ledger, AS_OF))
    assert streamed == by_series(compute_oracle(events, AS_OF, policy))
    assert f"leads|30d|all|{OVERFLOW_CHANNEL}" in streamed
