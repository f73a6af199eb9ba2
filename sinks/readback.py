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
from models.reach import CopyReach
from models.series import MetricPoint, compute_points
from models.state import StoredState
from sinks.codec import (
    bucket_from_field,
    churn_from_json,
    contract_from_json,
    point_from_json,
    reach_from_fields,
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
    state, _reach = await read_copy(url, keys, policy)
    return state


async def read_copy(
    url: str, keys: RedisKeys, policy: MetricPolicy
) -> tuple[StoredState, CopyReach | None]:
    """:func:`read_state`, and in the same transaction what the copy answers exactly: the
    latest first day and narrowest window over the parts that record one; None when no
    part records one (an unbounded copy, or one an earlier release wrote)."""
    client = aioredis.Redis.from_url(url)
    parts: list[str] = []
    try:
        replies = await client.transaction(
            lambda pipe: _queue_reads(pipe, keys, parts), keys.state_parts
        )
    except (RedisError, OSError) as error:
        raise SinkUnavailableError("redis", str(error)) from error
    finally:
        await client.aclose()
    if not parts:  # the earlier version's copy: no reach recorded
        replies = [*replies, {}]
    buckets = DailyBuckets()
    contracts: dict[str, BookedContract] = {}
    churns: dict[str, Churn] = {}
    reaches: list[CopyReach] = []
    for index in range(len(replies) // 4):
        buckets_raw, contracts_raw, churns_raw, reach_raw = replies[4 * index : 4 * index + 4]
        if (reach := reach_from_fields(reach_raw)) is not None:
            reaches.append(reach)
        for field_name, amount in buckets_raw.items():
            (metric, dimension, value), day = bucket_from_field(text(field_name))
            buckets.add(metric, (dimension, value), day, Decimal(text(amount)))
        for cid, body in contracts_raw.items():
            contracts[text(cid)] = contract_from_json(text(cid), body)
        churns.update({text(eid): churn_from_json(body) for eid, body in churns_raw.items()})
    buckets.take_touched()
    state = StoredState(policy, buckets, contracts, [churns[eid] for eid in sorted(churns)])
    return state, CopyReach.merged(reaches)


async def _queue_reads(pipe: Any, keys: RedisKeys, read_parts: list[str]) -> None:
    """Under WATCH of the set of parts: read it, then queue every part's hashes (four
    replies each: buckets, contracts, churns, reach) in one MULTI; a part added meanwhile
    makes the transaction run again."""
    parts = sorted(text(part) for part in await pipe.smembers(keys.state_parts))
    pipe.multi()  # each part's four replies; the earlier version's three, with no reach
    if parts:
        for part in parts:
            part_keys = keys.state_part(part)
            pipe.hgetall(part_keys.buckets)
            pipe.hgetall(part_keys.contracts)
            pipe.hgetall(part_keys.churns)
            pipe.hgetall(part_keys.reach)
    else:
        for key in keys.legacy_state:
            pipe.hgetall(key)
    read_parts[:] = parts


def points_on(state: StoredState, day: dt.date) -> list[MetricPoint]:
    """Every point of windows ending on ``day`` (undefined ones too), in series order."""
    return sorted(compute_points(state, day), key=_order)


async def points_as_of(
    url: str, keys: RedisKeys, policy: MetricPolicy, day: dt.date
) -> list[MetricPoint]:
    """Every point as of ``day``, computed from the state the worker stored in Redis.

    The same function the worker publishes with, so on the worker's clock day it gives the
    published figures; any other day gives what they were (or, for ARR, are contracted to be).
    A day before the copy's first answered day, or windows wider than it was bounded for,
    raise :class:`~models.errors.OutOfReachError` instead of giving short figures.
    """
    points, _reach = await answer_as_of(url, keys, policy, day)
    return points


async def answer_as_of(
    url: str, keys: RedisKeys, policy: MetricPolicy, day: dt.date
) -> tuple[list[MetricPoint], CopyReach | None]:
    """:func:`points_as_of`, and what the copy answers (None: it records nothing)."""
    state, reach = await read_copy(url, keys, policy)
    if reach is not None:
        reach.check(day, policy.window_days)
    return points_on(state, day), reach
