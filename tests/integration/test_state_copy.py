"""The Redis state copy ``--as-of`` reads: kept per state part, bounded by what it can reach."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
import redis.asyncio as aioredis

from models.book import BookedContract, Churn
from models.events import Event, event_to_json
from models.keyed import MemoryMaps
from models.policy import MetricPolicy
from models.publication import Publication
from models.reach import StateReach
from models.state import StateDelta
from sinks import state_copy
from sinks.codec import bucket_field, churn_to_json, contract_to_json
from sinks.readback import points_as_of, read_state
from sinks.redis_keys import RedisKeys, text
from sinks.redis_sink import RedisSink
from streams.pipeline.owner import LedgerOwner
from tests.integration.servers import started
from tests.unit.builders import churn, contract, lead

pytestmark = pytest.mark.timeout(120)
POLICY = MetricPolicy(retention_days=30, window_days=(7, 30))
KEY = ("leads", "all", "all")
DAY = dt.date(2026, 3, 1)
NOON = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


def fresh_keys() -> RedisKeys:
    return RedisKeys(f"rp-copy-{uuid.uuid4().hex[:8]}")


def booked(contract_id: str, account_id: str) -> BookedContract:
    return BookedContract(contract_id, account_id, "new", DAY, 12, Decimal(1200))


def publication(delta: StateDelta, clock: dt.datetime = NOON) -> Publication:
    return Publication((), clock, clock, state=delta)


async def publish(url: str, keys: RedisKeys, *publications: Publication, **options: object) -> None:
    async with started(RedisSink(url, keys, **options)) as sink:  # type: ignore[arg-type]
        for each in publications:
            await sink.publish(each)


async def parts_listed(url: str, keys: RedisKeys) -> set[str]:
    """The state parts the copy lists."""
    async with aioredis.Redis.from_url(url) as client:
        return {text(p) for p in await client.smembers(keys.state_parts)}


async def test_a_full_write_replaces_its_own_part_and_no_other(redis_url: str) -> None:
    keys = fresh_keys()
    part_0 = StateDelta(
        full=True,
        buckets={(KEY, DAY): Decimal("1.5")},
        contracts={"C0": booked("C0", "A0")},
        churns={"e0": Churn("A0", None, DAY)},
        part="0",
    )
    part_1 = StateDelta(
        full=True,
        buckets={(KEY, DAY): Decimal("2.25"), (KEY, DAY + dt.timedelta(days=1)): Decimal(1)},
        contracts={"C1": booked("C1", "A1")},
        part="1",
    )
    await publish(redis_url, keys, publication(part_0))
    await publish(redis_url, keys, publication(part_1))
    state = await read_state(redis_url, keys, POLICY)
    assert state.buckets.as_dict() == {KEY: {DAY: Decimal("3.75"), DAY + dt.timedelta(days=1): 1}}
    assert sorted(state.contracts) == ["C0", "C1"]
    assert state.churns() == [Churn("A0", None, DAY)]

    # part 1 taken over by another writer: its full write leaves part 0 as it was
    again = StateDelta(full=True, contracts={"C2": booked("C2", "A2")}, part="1")
    await publish(redis_url, keys, publication(again))
    state = await read_state(redis_url, keys, POLICY)
    assert state.buckets.as_dict() == {KEY: {DAY: Decimal("1.5")}}
    assert sorted(state.contracts) == ["C0", "C2"]
    assert state.churns() == [Churn("A0", None, DAY)]
    assert await parts_listed(redis_url, keys) == {"0", "1"}


async def test_an_earlier_version_s_copy_is_read_until_a_full_write_removes_it(
    redis_url: str,
) -> None:
    keys = fresh_keys()
    legacy_buckets, legacy_contracts, legacy_churns = keys.legacy_state
    async with aioredis.Redis.from_url(redis_url) as client:
        await client.hset(legacy_buckets, bucket_field(KEY, DAY), "4")
        await client.hset(legacy_contracts, "OLD", contract_to_json(booked("OLD", "A9")))
        await client.hset(legacy_churns, "e9", churn_to_json(Churn("A9", "OLD", DAY)))
        state = await read_state(redis_url, keys, POLICY)
        assert state.buckets.as_dict() == {KEY: {DAY: Decimal(4)}}
        assert list(state.contracts) == ["OLD"]
        assert state.churns() == [Churn("A9", "OLD", DAY)]

        new = StateDelta(full=True, contracts={"C0": booked("C0", "A0")})
        await publish(redis_url, keys, publication(new))
        assert await client.exists(*keys.legacy_state) == 0
        state = await read_state(redis_url, keys, POLICY)
        assert list(state.contracts) == ["C0"] and state.churns() == []


def history() -> list[list[Event]]:
    """Three years in yearly batches: contracts that end, churns of accounts and of single
    contracts, and a contract booked late with a start before an old account-wide churn."""
    return [
        [
            lead("l1", "L1", "2023-01-05"),
            contract("k1", "C1", "2023-01-10", account_id="A1"),
            contract("k2", "C2", "2023-02-01", account_id="A2", term_months=36),
            contract("k3", "C3", "2023-03-01", account_id="A3", term_months=48),
            churn("x1", "A2", "2023-06-01"),
            churn("x2", "A3", "2023-07-01", contract_id="C3"),
            churn("x3", "A3", "2023-08-01", contract_id="C3"),
        ],
        [
            contract(
                "k4", "C4", "2024-02-01", account_id="A2", start_date="2023-03-01", term_months=60
            ),
            churn("x4", "A2", "2024-03-01", effective_date="2023-05-01"),
            contract("k5", "C5", "2024-05-01", account_id="A5", term_months=24),
            lead("l2", "L2", "2024-06-05"),
        ],
        [
            contract(
                "k6", "C6", "2025-04-01", account_id="A2", start_date="2023-04-01", term_months=72
            ),
            contract("k7", "C7", "2025-05-01", account_id="A3", term_months=12),
            churn("x5", "A5", "2025-06-01"),
            lead("l3", "L3", "2025-06-05"),
        ],
    ]


async def test_a_bounded_copy_answers_every_kept_day_as_the_whole_one_does(
    redis_url: str,
) -> None:
    bounded, whole = fresh_keys(), fresh_keys()
    owner = LedgerOwner(POLICY, "wall", "30d", sources=("",))
    owner.install(owner.load(MemoryMaps()))
    reach = StateReach.for_policy(POLICY)
    sinks = [
        RedisSink(redis_url, bounded, reach=reach),
        RedisSink(redis_url, whole),
    ]
    for sink in sinks:
        await sink.start()
    clocks: list[dt.datetime] = []
    bucket_days: set[dt.date] = set()
    try:
        for year, batch in enumerate(history()):
            owner.apply_batch([event_to_json(e).encode() for e in batch])
            for month in (7, 12):  # incremental writes as the clock moves on
                clock = dt.datetime(2023 + year, month, 1, tzinfo=dt.UTC)
                owner.dirty = True
                found = owner.publication(clock)
                assert found is not None and found.state is not None
                assert found.state.full == (not clocks)
                for sink in sinks:
                    await sink.publish(found)
                clocks.append(clock)
                kept = (await read_state(redis_url, bounded, POLICY)).buckets.as_dict()
                days = {day for by_day in kept.values() for day in by_day}
                assert all(day >= reach.first_as_of(clock.date()) for day in days)
                bucket_days |= days
    finally:
        for sink in sinks:
            await sink.close()

    clock_day = clocks[-1].date()
    first = reach.first_as_of(clock_day)
    for offset in (0, 1, 6, 29, 30, 31, 200, 400, 800):
        day = first + dt.timedelta(days=offset)
        assert await points_as_of(redis_url, bounded, POLICY, day) == await points_as_of(
            redis_url, whole, POLICY, day
        ), day
    bounded_state = await read_state(redis_url, bounded, POLICY)
    whole_state = await read_state(redis_url, whole, POLICY)
    # C1 (2023-01-10, 12 months) ended before the first reached day; the account-wide churns
    # of A2 folded into the latest (x1, which still ends C6, booked later), the churns of
    # C3 into its latest (x3)
    assert reach.first_day(clock_day) == dt.date(2024, 11, 2)
    assert sorted(bounded_state.contracts) == ["C2", "C3", "C4", "C5", "C6", "C7"]
    assert sorted(whole_state.contracts) == ["C1", "C2", "C3", "C4", "C5", "C6", "C7"]
    assert sorted(c.effective_date.isoformat() for c in bounded_state.churns()) == [
        "2023-06-01",
        "2023-08-01",
        "2025-06-01",
    ]
    assert len(whole_state.churns()) == 5
    # the ledger prunes buckets before the retention: a zero amount removes the field
    assert dt.date(2024, 6, 5) in bucket_days and dt.date(2025, 6, 5) in bucket_days
    assert bounded_state.buckets.as_dict() == whole_state.buckets.as_dict() == {}


async def test_a_full_write_is_staged_then_moved_into_place(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large part goes to staging keys a chunk per round trip; the copy read meanwhile
    is the one before; what a write cut short left in staging is never read."""
    keys = fresh_keys()
    part = keys.state_part("0")
    async with aioredis.Redis.from_url(redis_url) as client:
        await publish(redis_url, keys, publication(StateDelta(
            full=True, contracts={"C0": booked("C0", "A0")}, part="0")))  # fmt: skip
        await client.hset(f"{part.contracts}:staging", "LEFT", "from a write cut short")
        many = {f"C{n}": booked(f"C{n}", f"A{n}") for n in range(1, 5001)}
        staged_reads: list[list[str]] = []
        run = state_copy.run_pipeline

        async def reading_between(*args: Any, **kwargs: Any) -> list[Any]:
            replies = await run(*args, **kwargs)
            staged_reads.append(sorted((await read_state(redis_url, keys, POLICY)).contracts))
            return replies

        monkeypatch.setattr(state_copy, "run_pipeline", reading_between)
        async with started(RedisSink(redis_url, keys)) as sink:
            await sink.publish(publication(StateDelta(full=True, contracts=many, part="0")))
        assert len(staged_reads) > 3  # several round trips before the transaction
        assert all(read == ["C0"] for read in staged_reads)  # the copy before, whole
        state = await read_state(redis_url, keys, POLICY)
        assert sorted(state.contracts) == sorted(many)
        assert [text(k) async for k in client.scan_iter(f"{keys.prefix}*staging*")] == []
