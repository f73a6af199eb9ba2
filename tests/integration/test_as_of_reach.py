"""``--as-of`` answers only what the bounded state copy can: the days and windows the worker
recorded with it, whatever the reading command's own settings say."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest
import redis.asyncio as aioredis

from models.errors import OutOfReachError
from models.events import event_to_json
from models.keyed import MemoryMaps
from models.reach import StateReach
from models.state import StateDelta
from sinks.codec import reach_from_fields
from sinks.readback import points_as_of, points_on, read_state
from sinks.redis_keys import RedisKeys
from sinks.redis_sink import RedisSink
from streams.pipeline.owner import LedgerOwner
from tests.integration.test_state_copy import POLICY, fresh_keys, history, publication, publish
from tests.integration.workers import isolated_settings, run_cli

pytestmark = pytest.mark.timeout(180)
WORKER_REACH = StateReach.for_policy(POLICY)  # the worker keeps 30 days
CLOCK = dt.datetime(2025, 12, 1, tzinfo=dt.UTC)
FIRST_AS_OF = dt.date(2025, 11, 1)  # the clock's day less the worker's 30 days
# C1 (A1, 2023-01-10 for 12 months) is active: the bounded copy dropped it, and the
# command's own 800 days (from 2023-09-23) would have answered without it
EARLY = dt.date(2023, 12, 1)


async def write_copies(url: str) -> tuple[RedisKeys, RedisKeys]:
    """Three years of history published as a worker keeping 30 days would: to a bounded
    copy, and to one that keeps everything (the reference)."""
    bounded, whole = fresh_keys(), fresh_keys()
    owner = LedgerOwner(POLICY, "wall", "30d", sources=("",))
    owner.install(owner.load(MemoryMaps()))
    sinks = [RedisSink(url, bounded, reach=WORKER_REACH), RedisSink(url, whole)]
    for sink in sinks:
        await sink.start()
    try:
        for year, batch in enumerate(history()):
            owner.apply_batch([event_to_json(e).encode() for e in batch])
            clock = CLOCK if year == 2 else dt.datetime(2023 + year, 12, 1, tzinfo=dt.UTC)
            owner.dirty = True
            found = owner.publication(clock)
            assert found is not None
            for sink in sinks:
                await sink.publish(found)
    finally:
        for sink in sinks:
            await sink.close()
    return bounded, whole


def arr(output: str) -> list[str]:
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    return [p["value"] for p in lines if p["metric"] == "arr"]


async def test_a_day_before_the_workers_copy_reaches_is_refused_not_answered_short(
    redis_url: str,
) -> None:
    bounded, whole = await write_copies(redis_url)
    assert WORKER_REACH.first_as_of(CLOCK.date()) == FIRST_AS_OF
    # what answering would give: the bounded copy has lost C1, so ARR on EARLY is short
    short = points_on(await read_state(redis_url, bounded, POLICY), EARLY)
    right = points_on(await read_state(redis_url, whole, POLICY), EARLY)
    assert [p.value for p in short if p.metric == "arr"] != [
        p.value for p in right if p.metric == "arr"
    ]

    cli = isolated_settings("localhost:9", redis_url, redis_prefix=bounded.prefix)
    assert cli.retention_days == 800 > WORKER_REACH.retention_days
    for day in (EARLY, FIRST_AS_OF - dt.timedelta(days=1)):
        refused = run_cli(cli, "metrics", "--json", "--as-of", day.isoformat())
        assert refused.returncode == 1 and refused.stdout == "", refused.stdout
        assert f"no data for {day}: " in refused.stderr
        assert f"answers days from {FIRST_AS_OF}" in refused.stderr
        assert "keeps 30 days before its clock 2025-12-01" in refused.stderr

    # within the copy's reach: the figures the worker's own settings give from a whole copy
    reference = isolated_settings("localhost:9", redis_url, redis_prefix=whole.prefix)
    reference = reference.model_copy(update={"retention_days": 30})
    for day in (FIRST_AS_OF, FIRST_AS_OF + dt.timedelta(days=20), dt.date(2026, 4, 1)):
        answered = run_cli(cli, "metrics", "--json", "--as-of", day.isoformat())
        expected = run_cli(reference, "metrics", "--json", "--as-of", day.isoformat())
        assert answered.returncode == 0, answered.stderr
        assert answered.stdout == expected.stdout, day
        assert arr(answered.stdout) == ["12000"]  # C7: A3, from 2025-05-01 for 12 months


async def test_a_copy_that_records_no_reach_is_read_as_before(redis_url: str) -> None:
    """An earlier release's copy: judged by the command's own retention, as it was."""
    bounded, _whole = await write_copies(redis_url)
    client = aioredis.Redis.from_url(redis_url)
    try:
        assert await client.delete(bounded.state_part("0").reach) == 1
    finally:
        await client.aclose()
    cli = isolated_settings("localhost:9", redis_url, redis_prefix=bounded.prefix)
    answered = run_cli(cli, "metrics", "--json", "--as-of", EARLY.isoformat())
    assert answered.returncode == 0, answered.stderr
    before = run_cli(cli, "metrics", "--json", "--as-of", "2023-09-01")  # before its 800 days
    assert before.returncode == 1 and "the worker keeps days from 2023-09-23" in before.stderr


async def test_windows_wider_than_the_copy_was_cut_for_are_refused(redis_url: str) -> None:
    bounded, whole = await write_copies(redis_url)
    wider = dataclasses.replace(POLICY, window_days=(7, 30, 400))
    with pytest.raises(OutOfReachError, match="windows of up to 365 days"):
        await points_as_of(redis_url, bounded, wider, dt.date(2026, 1, 1))
    assert await points_as_of(redis_url, bounded, POLICY, FIRST_AS_OF) == await points_as_of(
        redis_url, whole, POLICY, FIRST_AS_OF
    )


async def stored_first_as_of(url: str, keys: RedisKeys, part: str = "0") -> dt.date | None:
    client = aioredis.Redis.from_url(url)
    try:
        found = reach_from_fields(await client.hgetall(keys.state_part(part).reach))
    finally:
        await client.aclose()
    return None if found is None else found.first_as_of


async def test_the_recorded_reach_never_claims_days_the_copy_dropped(redis_url: str) -> None:
    keys = fresh_keys()
    later, earlier = CLOCK, CLOCK - dt.timedelta(days=100)
    options = {"reach": WORKER_REACH}
    await publish(redis_url, keys, publication(StateDelta(full=True), later), **options)
    assert await stored_first_as_of(redis_url, keys) == FIRST_AS_OF
    # a clock that steps back, in this sink or a new one: what was dropped stays dropped
    await publish(
        redis_url,
        keys,
        publication(StateDelta(full=True), later),
        publication(StateDelta(), earlier),
        **options,
    )
    assert await stored_first_as_of(redis_url, keys) == FIRST_AS_OF
    await publish(redis_url, keys, publication(StateDelta(), earlier), **options)
    assert await stored_first_as_of(redis_url, keys) == FIRST_AS_OF
    # a full write replaces the copy: exact from its own clock's first day
    await publish(redis_url, keys, publication(StateDelta(full=True), earlier), **options)
    assert await stored_first_as_of(redis_url, keys) == FIRST_AS_OF - dt.timedelta(days=100)
    # another part, kept 10 days: the reader takes the latest first day of all parts
    shorter = {"reach": StateReach(retention_days=10, window_days=POLICY.window_days)}
    await publish(redis_url, keys, publication(StateDelta(full=True, part="1"), later), **shorter)
    assert await stored_first_as_of(redis_url, keys, "1") == dt.date(2025, 11, 21)
    with pytest.raises(OutOfReachError, match="answers days from 2025-11-21"):
        await points_as_of(redis_url, keys, POLICY, dt.date(2025, 11, 20))
    # a part written without a reach (unbounded) records none
    await publish(redis_url, keys, publication(StateDelta(full=True, part="1"), later))
    assert await stored_first_as_of(redis_url, keys, "1") is None
