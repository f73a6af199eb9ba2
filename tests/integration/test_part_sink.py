"""The entity partitions' parts of the state copy (sinks.part_sink): written next to the
ledger's part, each replacing only itself, listed in the parts set, bounded as the
ledger's, and written in full again once Redis lost them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import redis.asyncio as aioredis

from models.book import BookedContract, Churn
from models.reach import StateReach
from models.state import StateDelta
from sinks.codec import reach_from_fields
from sinks.errors import SinkUnavailableError
from sinks.part_sink import RedisPartSink
from sinks.readback import read_state
from sinks.redis_keys import RedisKeys
from tests.integration.servers import started
from tests.integration.test_state_copy import (
    DAY,
    KEY,
    NOON,
    POLICY,
    booked,
    fresh_keys,
    parts_listed,
    publication,
    publish,
)

pytestmark = pytest.mark.timeout(120)


async def write(url: str, keys: RedisKeys, *deltas: StateDelta, **options: object) -> None:
    async with started(RedisPartSink(url, keys, **options)) as sink:  # type: ignore[arg-type]
        for delta in deltas:
            await sink.write(delta, NOON)


async def test_entity_parts_sit_next_to_the_ledger_s_and_replace_only_themselves(
    redis_url: str,
) -> None:
    keys = fresh_keys()
    ledger = StateDelta(full=True, buckets={(KEY, DAY): Decimal(2)}, part="0")
    await publish(redis_url, keys, publication(ledger))
    await write(
        redis_url, keys,
        StateDelta(full=True, contracts={"C0": booked("C0", "A0")}, part="entities-0"),
        StateDelta(full=True, contracts={"C1": booked("C1", "A1")},
                   churns={"e1": Churn("A1", None, DAY)}, part="entities-1"),
        StateDelta(contracts={"C3": booked("C3", "A1")}, part="entities-1"),
    )  # fmt: skip
    state = await read_state(redis_url, keys, POLICY)
    assert state.buckets.as_dict() == {KEY: {DAY: Decimal(2)}}
    assert sorted(state.contracts) == ["C0", "C1", "C3"]
    assert state.churns() == [Churn("A1", None, DAY)]
    assert await parts_listed(redis_url, keys) == {"0", "entities-0", "entities-1"}

    # entities-1 taken over: the new owner's full write replaces it, and only it
    await write(
        redis_url, keys, StateDelta(full=True, contracts={"C2": booked("C2", "A2")},
                                    part="entities-1"),
    )  # fmt: skip
    state = await read_state(redis_url, keys, POLICY)
    assert state.buckets.as_dict() == {KEY: {DAY: Decimal(2)}}
    assert sorted(state.contracts) == ["C0", "C2"]
    assert state.churns() == []


async def test_a_part_redis_lost_is_refused_an_increment_and_written_in_full(
    redis_url: str,
) -> None:
    keys = fresh_keys()
    async with started(RedisPartSink(redis_url, keys)) as sink:
        await sink.write(StateDelta(full=True, contracts={"C0": booked("C0", "A0")},
                                    part="entities-0"), NOON)  # fmt: skip
        async with aioredis.Redis.from_url(redis_url) as client:  # flushed
            await client.delete(keys.state_parts, *keys.state_part("entities-0").all)
        with pytest.raises(SinkUnavailableError, match="written again in full"):
            await sink.write(StateDelta(contracts={"C1": booked("C1", "A0")},
                                        part="entities-0"), NOON)  # fmt: skip
        everything = {"C0": booked("C0", "A0"), "C1": booked("C1", "A0")}
        await sink.write(StateDelta(full=True, contracts=everything, part="entities-0"), NOON)
        assert sorted((await read_state(redis_url, keys, POLICY)).contracts) == ["C0", "C1"]
        # an increment to a part never written by this sink is refused too
        with pytest.raises(SinkUnavailableError):
            await sink.write(StateDelta(contracts=everything, part="entities-1"), NOON)


async def test_an_entity_part_is_bounded_and_records_what_it_answers(redis_url: str) -> None:
    keys = fresh_keys()
    reach = StateReach.for_policy(POLICY)
    over = BookedContract("OLD", "A0", "new", DAY - dt.timedelta(days=800), 1, Decimal(100))
    delta = StateDelta(full=True, contracts={"OLD": over, "C0": booked("C0", "A0")},
                       part="entities-0")  # fmt: skip
    await write(redis_url, keys, delta, reach=reach)
    assert sorted((await read_state(redis_url, keys, POLICY)).contracts) == ["C0"]
    async with aioredis.Redis.from_url(redis_url) as client:
        recorded = reach_from_fields(await client.hgetall(keys.state_part("entities-0").reach))
    assert recorded == reach.copy_reach(NOON.date())
