"""The Redis sink pushes each changed point on its series' history exactly once, a chunk of
series per round trip; after a failure part-way, the next publish writes only the rest."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
import redis.asyncio as aioredis

from models.publication import Publication
from models.series import MetricPoint
from sinks import redis_sink
from sinks.errors import SinkUnavailableError
from sinks.redis_keys import RedisKeys
from sinks.redis_sink import HISTORY_CHUNK_SERIES, RedisSink

pytestmark = pytest.mark.timeout(60)
AS_OF = dt.date(2026, 3, 10)
CLOCK = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)
SERIES = 2 * HISTORY_CHUNK_SERIES + 7


def publication(value: int) -> Publication:
    points = tuple(
        MetricPoint("leads", "30d", "all", f"ch{i:04d}", Decimal(value), AS_OF)
        for i in range(SERIES)
    )
    return Publication(points=points, clock=CLOCK, watermark=CLOCK, band=None)


async def history_lengths(url: str, keys: RedisKeys) -> list[int]:
    client = aioredis.Redis.from_url(url)
    try:
        ids = [f"leads|30d|all|ch{i:04d}" for i in range(SERIES)]
        pipe = client.pipeline(transaction=False)
        for series_id in ids:
            pipe.llen(keys.history(series_id))
        return list(await pipe.execute())
    finally:
        await client.aclose()


async def test_history_is_written_once_per_change_even_across_a_failure(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = RedisKeys("rp-history")
    sink = RedisSink(redis_url, keys)
    await sink.start()
    try:
        await sink.publish(publication(1))
        assert await history_lengths(redis_url, keys) == [1] * SERIES

        calls = {"history": 0}
        run = RedisSink._run

        async def failing_second_chunk(self: RedisSink, commands: Any) -> None:
            calls["history"] += 1
            if calls["history"] == 2:
                raise SinkUnavailableError("redis", "connection reset")
            await run(self, commands)

        monkeypatch.setattr(redis_sink.RedisSink, "_run", failing_second_chunk)
        with pytest.raises(SinkUnavailableError):
            await sink.publish(publication(2))
        lengths = await history_lengths(redis_url, keys)
        assert lengths.count(2) == HISTORY_CHUNK_SERIES  # the first chunk took the change

        monkeypatch.setattr(redis_sink.RedisSink, "_run", run)
        await sink.publish(publication(2))  # the rest, and no series twice
        assert await history_lengths(redis_url, keys) == [2] * SERIES
        client = aioredis.Redis.from_url(redis_url)
        try:
            newest = await client.lindex(keys.history("leads|30d|all|ch0000"), 0)
            current = await client.hget(keys.current, "leads|30d|all|ch0000")
        finally:
            await client.aclose()
        assert json.loads(newest)["value"] == json.loads(current)["value"] == "2"
    finally:
        await sink.close()
