"""``points_as_of``: the one ``--as-of`` read path, the stored state computed as of a day."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from models.events import event_to_json
from models.keyed import MemoryMaps
from models.policy import MetricPolicy
from models.series import compute_points
from sinks.readback import points_as_of
from sinks.redis_keys import RedisKeys
from sinks.redis_sink import RedisSink
from streams.pipeline.owner import LedgerOwner
from tests.unit.builders import contract, conversion, lead, spend

pytestmark = pytest.mark.timeout(60)
T0 = dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)


async def test_points_as_of_any_day_are_the_ledger_s_own(redis_url: str) -> None:
    keys = RedisKeys(f"rp-readback-{uuid.uuid4().hex[:8]}")
    owner = LedgerOwner(MetricPolicy(), "event", "30d")
    owner.install(owner.load(MemoryMaps()))
    events = [
        lead("e1", "L1", "2026-03-01"),
        spend("e2", "ads", "1200.00", "2026-03-01"),
        conversion("e3", "L1", "2026-03-03"),
        contract("e4", "C1", "2026-03-05", lead_id="L1", recurring_value="24000"),
    ]
    owner.apply_batch([event_to_json(e).encode() for e in events])
    publication = owner.publication(T0)
    assert publication is not None and owner.ledger is not None
    sink = RedisSink(redis_url, keys)
    await sink.start()
    try:
        await sink.publish(publication)
    finally:
        await sink.close()

    for day in (dt.date(2026, 3, 2), T0.date(), dt.date(2026, 6, 1)):
        found = await points_as_of(redis_url, keys, MetricPolicy(), day)
        expected = compute_points(owner.ledger, day)
        assert sorted(found, key=lambda p: p.series_id) == sorted(
            expected, key=lambda p: p.series_id
        )
        assert {p.as_of for p in found} == {day}
        assert any(p.value is None for p in found)  # undefined points are kept, not zeroed
        order = [(p.metric, p.window, p.origin, p.channel) for p in found]
        assert order == sorted(order)
    arr = {
        p.as_of: p.value
        for p in await points_as_of(redis_url, keys, MetricPolicy(), T0.date())
        if (p.metric, p.window, p.origin, p.channel) == ("arr", "point", "all", "all")
    }
    assert arr == {T0.date(): 24000}
