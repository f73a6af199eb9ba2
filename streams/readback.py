"""Reading published metrics back from Redis, for the CLI and the tests."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from models.errors import SinkUnavailableError
from models.series import MetricPoint
from sinks.codec import point_from_json
from sinks.redis_keys import RedisKeys, text


async def read_current(url: str, keys: RedisKeys) -> tuple[list[MetricPoint], dict[str, str]]:
    """Every current point (sorted by series id) and the publish metadata."""
    client = aioredis.Redis.from_url(url)
    try:
        stored = await client.hgetall(keys.current)
        meta = await client.hgetall(keys.meta)
    except (RedisError, OSError) as error:
        raise SinkUnavailableError("redis", str(error)) from error
    finally:
        await client.aclose()
    points = sorted((point_from_json(value) for value in stored.values()), key=_order)
    return points, {text(key): text(value) for key, value in meta.items()}


def _order(point: MetricPoint) -> tuple[str, ...]:
    return (point.metric, point.window, point.origin, point.channel)
