"""Sinks without servers: the point codec, the memory sink and the Prometheus collector."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from builders import contract, conversion, lead, spend
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from models.catalogue import BY_NAME, CATALOGUE
from models.ledger import Ledger
from models.policy import MetricPolicy
from models.publication import BandChange, Publication
from models.series import MetricPoint, compute_points
from models.state import StateDelta
from sinks.base import Sink
from sinks.codec import point_from_json, point_to_dict, point_to_json
from sinks.errors import SinkUnavailableError
from sinks.memory import MemorySink
from sinks.part_sink import RedisPartSink
from sinks.prometheus_sink import PrometheusSink, gauge_name
from sinks.redis_keys import RedisKeys
from sinks.redis_sink import RedisSink
from streams.devstack.stack import free_port

D = Decimal
AS_OF = dt.date(2024, 3, 31)
CLOCK = dt.datetime(2024, 3, 31, 18, 30, tzinfo=dt.UTC)
WATERMARK = dt.datetime(2024, 3, 31, 18, 0, tzinfo=dt.UTC)

RATE = MetricPoint("conversion_rate", "30d", "all", "all", D("0.5"), AS_OF, D(2), D(4))
UNDEFINED = MetricPoint("conversion_rate", "7d", "all", "all", None, AS_OF, D(0), D(0))
LEADS = MetricPoint("leads", "30d", "marketing", "all", D(3), AS_OF)
CAC = MetricPoint("cac", "30d", "all", "paid_search", D("60000.000000"), AS_OF, D(60000), D(1))
ARR = MetricPoint("arr", "point", "all", "all", D("1708000.000000"), AS_OF)


def publication(*points: MetricPoint, band: str | None = "strong") -> Publication:
    return Publication(points=points, clock=CLOCK, watermark=WATERMARK, band=band)


# -- codec ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("point", "expected"),
    [
        (
            RATE,
            {
                "metric": "conversion_rate",
                "window": "30d",
                "origin": "all",
                "channel": "all",
                "value": "0.5",
                "as_of": "2024-03-31",
                "numerator": "2",
                "denominator": "4",
            },
        ),
        (
            UNDEFINED,
            {
                "metric": "conversion_rate",
                "window": "7d",
                "origin": "all",
                "channel": "all",
                "value": None,
                "as_of": "2024-03-31",
                "numerator": "0",
                "denominator": "0",
            },
        ),
        (
            LEADS,
            {
                "metric": "leads",
                "window": "30d",
                "origin": "marketing",
                "channel": "all",
                "value": "3",
                "as_of": "2024-03-31",
            },
        ),
        (
            ARR,
            {
                "metric": "arr",
                "window": "point",
                "origin": "all",
                "channel": "all",
                "value": "1708000",
                "as_of": "2024-03-31",
            },
        ),
    ],
)
def test_point_to_dict(point: MetricPoint, expected: dict[str, object]) -> None:
    assert point_to_dict(point) == expected
    assert json.loads(point_to_json(point)) == expected


def test_point_json_is_compact_and_sorted() -> None:
    assert point_to_json(LEADS) == (
        '{"as_of":"2024-03-31","channel":"all","metric":"leads","origin":"marketing",'
        '"value":"3","window":"30d"}'
    )


@pytest.mark.parametrize("point", [RATE, UNDEFINED, LEADS, CAC, ARR])
def test_codec_round_trip(point: MetricPoint) -> None:
    assert point_from_json(point_to_json(point)) == point
    assert point_from_json(point_to_json(point).encode()) == point


@given(
    value=st.none() | st.decimals(min_value=-(10**15), max_value=10**15, places=6),
    denominator=st.none() | st.decimals(min_value=0, max_value=10**9, places=6),
)
def test_codec_round_trip_keeps_exact_values(
    value: Decimal | None, denominator: Decimal | None
) -> None:
    numerator = None if denominator is None else D("1.5")
    point = MetricPoint("cac", "90d", "all", "events", value, AS_OF, numerator, denominator)
    back = point_from_json(point_to_json(point))
    assert back == point
    assert "E" not in point_to_json(point)


# -- memory sink -----------------------------------------------------------------------------


async def test_memory_sink_keeps_every_publication() -> None:
    sink = MemorySink()
    assert isinstance(sink, MemorySink)
    protocol_user: Sink = sink
    assert protocol_user.name == "memory"
    assert sink.latest is None
    await sink.start()
    first, second = publication(RATE), publication(LEADS, band=None)
    await sink.publish(first)
    await sink.publish(second)
    await sink.close()
    assert (sink.started, sink.closed) == (True, True)
    assert sink.publications == [first, second]
    assert sink.latest is second


# -- Prometheus --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "name"),
    [
        ("conversion_rate", "revpulse_conversion_rate_ratio"),
        ("roas", "revpulse_roas"),
        ("cac", "revpulse_cac"),
        ("arr", "revpulse_arr"),
        ("cac_payback_months", "revpulse_cac_payback_months"),
    ],
)
def test_gauge_names(metric: str, name: str) -> None:
    assert gauge_name(BY_NAME[metric]) == name


async def test_prometheus_has_nothing_before_the_first_publish() -> None:
    registry = CollectorRegistry()
    PrometheusSink(registry, "USD")
    assert generate_latest(registry) == b""


async def test_prometheus_sink_exports_values_and_parts() -> None:
    registry = CollectorRegistry()
    sink = PrometheusSink(registry, "USD")
    await sink.start()
    await sink.publish(publication(RATE, UNDEFINED, LEADS, CAC, ARR))
    get = registry.get_sample_value
    labels = {"window": "30d", "origin": "all", "channel": "all"}
    assert get("revpulse_conversion_rate_ratio", labels) == 0.5
    assert get("revpulse_conversion_rate_ratio_numerator", labels) == 2
    assert get("revpulse_conversion_rate_ratio_denominator", labels) == 4
    week = {"window": "7d", "origin": "all", "channel": "all"}
    assert get("revpulse_conversion_rate_ratio", week) is None  # undefined: no sample
    assert get("revpulse_conversion_rate_ratio_denominator", week) == 0
    assert get("revpulse_conversion_rate_ratio_numerator", week) == 0
    assert get("revpulse_leads", {"window": "30d", "origin": "marketing", "channel": "all"}) == 3
    assert get("revpulse_leads_numerator", labels) is None  # counts have no parts
    paid = {"window": "30d", "origin": "all", "channel": "paid_search"}
    assert get("revpulse_cac", paid) == 60000
    assert get("revpulse_cac_denominator", paid) == 1
    assert get("revpulse_arr", {"window": "point", "origin": "all", "channel": "all"}) == 1708000
    assert get("revpulse_metrics_clock_timestamp_seconds") == CLOCK.timestamp()
    assert get("revpulse_watermark_timestamp_seconds") == WATERMARK.timestamp()
    assert get("revpulse_marketing_acv_band", {"band": "strong"}) == 1
    assert get("revpulse_marketing_acv_band", {"band": "moderate"}) == 0
    assert get("revpulse_marketing_acv_band", {"band": "under"}) == 0


async def test_prometheus_shows_the_latest_publication_only() -> None:
    registry = CollectorRegistry()
    sink = PrometheusSink(registry, "USD")
    await sink.publish(publication(RATE, band="strong"))
    changed = MetricPoint("conversion_rate", "30d", "all", "all", D("0.25"), AS_OF, D(1), D(4))
    await sink.publish(Publication(points=(changed,), clock=CLOCK, watermark=None, band="moderate"))
    get = registry.get_sample_value
    assert (
        get("revpulse_conversion_rate_ratio", {"window": "30d", "origin": "all", "channel": "all"})
        == 0.25
    )
    assert get("revpulse_marketing_acv_band", {"band": "moderate"}) == 1
    assert get("revpulse_marketing_acv_band", {"band": "strong"}) == 0
    assert get("revpulse_watermark_timestamp_seconds") is None


async def test_prometheus_without_a_band_has_no_band_samples() -> None:
    registry = CollectorRegistry()
    sink = PrometheusSink(registry, "EUR")
    await sink.publish(publication(LEADS, band=None))
    assert registry.get_sample_value("revpulse_marketing_acv_band", {"band": "strong"}) is None
    text = generate_latest(registry).decode()
    assert "# HELP revpulse_cac Customer acquisition cost" in text
    assert "(EUR)" in text


async def test_prometheus_close_unregisters() -> None:
    registry = CollectorRegistry()
    sink = PrometheusSink(registry, "USD")
    await sink.publish(publication(LEADS))
    await sink.close()
    assert registry.get_sample_value("revpulse_metrics_clock_timestamp_seconds") is None
    PrometheusSink(registry, "USD")  # the names are free again


async def test_prometheus_exports_a_real_ledger() -> None:
    ledger = Ledger(MetricPolicy())
    for event in [
        lead("l1", "L1", "2024-03-10"),
        conversion("c1", "L1", "2024-03-11"),
        contract("k1", "C1", "2024-03-12", lead_id="L1", recurring_value="1200000"),
        spend("s1", "paid_search", "60000", "2024-03-12"),
    ]:
        ledger.apply(event)
    points = compute_points(ledger, AS_OF)
    registry = CollectorRegistry()
    sink = PrometheusSink(registry, "USD")
    await sink.publish(Publication(tuple(points), CLOCK, ledger.watermark, "strong"))
    text = generate_latest(registry).decode()
    for metric in CATALOGUE:
        assert f"# TYPE {gauge_name(metric)} gauge" in text
    get = registry.get_sample_value
    marketing = {"window": "30d", "origin": "marketing", "channel": "all"}
    assert get("revpulse_conversion_rate_ratio", marketing) == 1
    assert (
        get("revpulse_marketing_acv", {"window": "30d", "origin": "all", "channel": "all"})
        == 1_200_000
    )
    assert get("revpulse_roas", {"window": "30d", "origin": "all", "channel": "paid_search"}) == 20
    assert get("revpulse_ltv", {"window": "point", "origin": "all", "channel": "all"}) is None


# -- Redis, without a server ----------------------------------------------------------------------


def test_redis_keys() -> None:
    keys = RedisKeys("rp")
    assert keys.current == "rp:current"
    assert keys.meta == "rp:meta"
    assert keys.history("cac|30d|all|all") == "rp:history:cac|30d|all|all"
    assert keys.updates_channel == "rp:updates"
    assert keys.alerts == "rp:alerts"
    assert RedisKeys().current == "revpulse:current"


async def test_redis_sink_refuses_to_publish_before_start() -> None:
    sink = RedisSink("redis://127.0.0.1:1/0", RedisKeys())
    with pytest.raises(SinkUnavailableError) as caught:
        await sink.publish(publication(LEADS))
    assert (caught.value.sink, caught.value.reason) == ("redis", "not started")
    await sink.close()  # closing a sink that never started is fine


async def test_the_entity_parts_sink_fails_under_its_own_name_not_the_publisher_s() -> None:
    """Two sinks write to Redis: the publisher's (``redis``, on the ledger's owner) and
    the entity parts' (``redis-parts``, on every worker). Each failure carries the name of
    the sink that failed, the ``sink`` label it is counted and alerted under."""
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    publisher_sink, part_sink = RedisSink(url, RedisKeys()), RedisPartSink(url, RedisKeys())
    await publisher_sink.start()
    await part_sink.start()
    try:
        with pytest.raises(SinkUnavailableError) as publishing:
            await publisher_sink.publish(publication(LEADS))
        delta = StateDelta(full=True, contracts={}, part="entities-0")
        with pytest.raises(SinkUnavailableError) as writing:
            await part_sink.write(delta, None)
    finally:
        await publisher_sink.close()
        await part_sink.close()
    assert (publishing.value.sink, writing.value.sink) == ("redis", "redis-parts")


def test_band_change_as_dict() -> None:
    change = BandChange("strong", "moderate", D("979999.5"), "30d", CLOCK)
    assert change.as_dict() == {
        "previous": "strong",
        "current": "moderate",
        "value": "979999.5",
        "window": "30d",
        "clock": "2024-03-31T18:30:00+00:00",
    }


async def test_prometheus_withdraw_stops_exporting_business_gauges() -> None:
    registry = CollectorRegistry()
    sink = PrometheusSink(registry, "USD")
    await sink.publish(publication(RATE, ARR))
    arr = {"window": "point", "origin": "all", "channel": "all"}
    assert registry.get_sample_value("revpulse_arr", arr) == 1708000
    await sink.withdraw()  # the ledger moved to another worker
    assert registry.get_sample_value("revpulse_arr", arr) is None
    assert generate_latest(registry) == b""


async def test_memory_sink_records_a_withdraw() -> None:
    sink = MemorySink()
    await sink.withdraw()
    assert sink.withdrawn
