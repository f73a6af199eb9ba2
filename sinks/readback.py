"""Reading published metrics back from Redis, for the CLI, the benchmarks and the tests.

The one ``--as-of`` read path is :func:`points_as_of`: the stored state, computed as of a day.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from models.book import BookedContract, Churn
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
    """The stored copy of what the metrics are computed from: every state part's, merged
    (buckets summed per day, contracts and churns united), read in one transaction. While
    no part exists, the un-partitioned copy of an earlier version is read instead."""
    client = aioredis.Redis.from_url(url)
    try:
        replies = await client.transaction(lambda pipe: _queue_reads(pipe, keys), keys.state_parts)
    except (RedisError, OSError) as error:
        raise SinkUnavailableError("redis", str(error)) from error
    finally:
        await client.aclose()
    buckets = DailyBuckets()
    contracts: dict[str, BookedContract] = {}
    churns: dict[str, Churn] = {}
    for index in range(len(replies) // 3):
        buckets_raw, contracts_raw, churns_raw = replies[3 * index : 3 * index + 3]
        for field_name, amount in buckets_raw.items():
            (metric, dimension, value), day = bucket_from_field(text(field_name))
            buckets.add(metric, (dimension, value), day, Decimal(text(amount)))
        for cid, body in contracts_raw.items():
            contracts[text(cid)] = contract_from_json(text(cid), body)
        churns.update({text(eid): churn_from_json(body) for eid, body in churns_raw.items()})
    buckets.take_touched()
    return StoredState(policy, buckets, contracts, [churns[eid] for eid in sorted(churns)])


async def _queue_reads(pipe: Any, keys: RedisKeys) -> None:
    """Under WATCH of the set of parts: read it, then queue every part's hashes (three
    replies each) in one MULTI; a part added meanwhile makes the transaction run again."""
    parts = sorted(text(part) for part in await pipe.smembers(keys.state_parts))
    pipe.multi()
    if parts:
        for part in parts:
            part_keys = keys.state_part(part)
            pipe.hgetall(part_keys.buckets)
            pipe.hgetall(part_keys.contracts)
            pipe.hgetall(part_keys.churns)
    else:
        for key in keys.legacy_state:
            pipe.hgetall(key)


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
