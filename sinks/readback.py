"""Reading published metrics back from Redis, for the CLI, the benchmarks and the tests.

The one ``--as-of`` read path is :func:`points_as_of`: the stored state, computed as of a day.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from models.buckets import DailyBuckets
from models.policy import MetricPolicy
from models.series import MetricPoint, compute_points
from models.state import StoredState
from sinks.codec import (
    bucket_from_field,
    churn_from_json,
    contract_from_json,
    point_from_json,
)
from sinks.errors import SinkUnavailableError
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


async def read_state(url: str, keys: RedisKeys, policy: MetricPolicy) -> StoredState:
    """The stored copy of what the metrics are computed from, read in one transaction."""
    client = aioredis.Redis.from_url(url)
    try:
        pipe = client.pipeline(transaction=True)
        pipe.hgetall(keys.state_buckets)
        pipe.hgetall(keys.state_contracts)
        pipe.hgetall(keys.state_churns)
        buckets_raw, contracts_raw, churns_raw = await pipe.execute()
    except (RedisError, OSError) as error:
        raise SinkUnavailableError("redis", str(error)) from error
    finally:
        await client.aclose()
    buckets = DailyBuckets()
    for field_name, amount in buckets_raw.items():
        (metric, dimension, value), day = bucket_from_field(text(field_name))
        buckets.add(metric, (dimension, value), day, Decimal(text(amount)))
    buckets.take_touched()
    contracts = {
        text(cid): contract_from_json(text(cid), body) for cid, body in contracts_raw.items()
    }
    churns = [churn_from_json(body) for _event_id, body in sorted(churns_raw.items())]
    return StoredState(policy, buckets, contracts, churns)


def points_on(state: StoredState, day: dt.date) -> list[MetricPoint]:
    """Every point of windows ending on ``day`` (undefined ones too), in series order."""
    return sorted(compute_points(state, day), key=_order)


async def points_as_of(
    url: str, keys: RedisKeys, policy: MetricPolicy, day: dt.date
) -> list[MetricPoint]:
    """Every point as of ``day``, computed from the state the worker stored in Redis.

    The same function the worker publishes with, so on the worker's clock day it gives the
    published figures; any other day gives what they were (or, for ARR, are contracted to be).
    """
    return points_on(await read_state(url, keys, policy), day)
