"""The state copy in Redis that ``--as-of`` reads: how one part's delta is written.

Each state part (``revpulse:state:<part>:*``, listed in ``revpulse:state:parts``) is
written only by the worker that owns it: the ledger's part by the publisher
(sinks.redis_sink.RedisSink, in its publish transaction), each entity partition's by
the worker that holds it (sinks.part_sink.RedisPartSink). Both write through
:class:`StateCopy`: a full delta replaces its own part and no other, staged a chunk per
round trip and renamed into place in the writer's transaction; an incremental one
adds to it; either way the part is bounded to what an answered ``--as-of`` day can
reach (models.reach) and records what it answers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from models.book import BookedContract, Churn
from models.reach import ChurnMark, CopyReach, StateReach, churn_scope, fold_churns
from models.state import StateDelta
from sinks.codec import (
    bucket_field,
    churn_from_json,
    churn_to_json,
    contract_to_json,
    reach_from_fields,
    reach_to_fields,
)
from sinks.errors import SinkUnavailableError
from sinks.redis_keys import RedisKeys, StatePartKeys, text

# fields of a full state write staged per round trip: tens of milliseconds of the loop
STAGE_CHUNK_FIELDS = 2000


def chunks(items: list[Any], size: int = 5000) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass
class StatePlan:
    """What one write queues for one part's state copy, in the writer's transaction."""

    delta: StateDelta
    part: StatePartKeys
    first_day: dt.date | None  # None: unbounded, everything is kept
    reach: CopyReach | None = None  # what the copy answers once written; None: unbounded
    contracts: dict[str, BookedContract] = field(default_factory=dict)
    gone_contracts: list[str] = field(default_factory=list)
    churns: dict[str, Churn] = field(default_factory=dict)
    churn_days: dict[str, Churn] = field(default_factory=dict)  # not folded: dated E or after
    unfolded: dict[str, Churn] = field(default_factory=dict)  # folded now, stored earlier
    kept: dict[str, ChurnMark] = field(default_factory=dict)
    gone_churns: set[str] = field(default_factory=set)
    staged: list[str] = field(default_factory=list)  # keys a full write staged

    def __post_init__(self) -> None:
        if self.first_day is None:
            self.contracts = dict(self.delta.contracts)
            self.churns = self.churn_days = dict(self.delta.churns)

    def queue(self, pipe: Any, keys: RedisKeys) -> None:
        """Deletions first, so a contract both out of reach and written anew is kept."""
        delta, part = self.delta, self.part
        pipe.sadd(keys.state_parts, delta.part)
        if delta.full:  # this part only: other writers' parts stay
            pipe.delete(*part.all, *keys.legacy_state)
        else:
            self._queue_deletions(pipe)
        self._queue_writes(pipe)

    def _queue_deletions(self, pipe: Any) -> None:
        delta, part = self.delta, self.part
        gone_buckets = [
            bucket_field(k, day) for (k, day), amount in delta.buckets.items() if not amount
        ]
        for chunk in chunks(gone_buckets):
            pipe.hdel(part.buckets, *chunk)
        for chunk in chunks(self.gone_contracts):
            pipe.hdel(part.contracts, *chunk)
            pipe.zrem(part.contract_ends, *chunk)
        for chunk in chunks(sorted(self.gone_churns)):
            pipe.hdel(part.churns, *chunk)
        for chunk in chunks(sorted(self.gone_churns | set(self.unfolded))):
            pipe.zrem(part.churn_days, *chunk)

    def split_by_reach(self) -> dict[str, Churn]:
        """Contracts kept and gone by the first reached day; the churns dated before it
        (to fold) are returned, the others kept by day."""
        assert self.first_day is not None
        first_day, delta = self.first_day, self.delta
        self.contracts = {
            cid: c for cid, c in delta.contracts.items() if StateReach.keeps(c, first_day)
        }
        self.gone_contracts = [cid for cid in delta.contracts if cid not in self.contracts]
        earlier = {e: c for e, c in delta.churns.items() if c.effective_date < first_day}
        self.churn_days = {e: c for e, c in delta.churns.items() if e not in earlier}
        return earlier

    def writes(self) -> Iterator[tuple[str, str, Iterator[tuple[str, Any]]]]:
        """Each key this write adds to: (key, "hset" or "zadd", its fields and values),
        the values encoded as they are read, a chunk at a time."""
        delta, part = self.delta, self.part
        yield (
            part.buckets,
            "hset",
            (
                (bucket_field(k, day), format(amount, "f"))
                for (k, day), amount in delta.buckets.items()
                if amount != 0
            ),
        )
        contracts = self.contracts
        yield part.contracts, "hset", ((cid, contract_to_json(c)) for cid, c in contracts.items())
        yield (
            part.contract_ends,
            "zadd",
            ((cid, c.term_end.toordinal()) for cid, c in contracts.items()),
        )
        yield part.churns, "hset", ((e, churn_to_json(c)) for e, c in self.churns.items())
        yield (
            part.churn_days,
            "zadd",
            ((e, c.effective_date.toordinal()) for e, c in self.churn_days.items()),
        )
        yield (
            part.churn_kept,
            "hset",
            ((scope, f"{day.isoformat()}|{e}") for scope, (day, e) in self.kept.items()),
        )

    def _queue_writes(self, pipe: Any) -> None:
        if self.delta.full:  # staged before the transaction: moved into place here
            for key in self.staged:
                pipe.rename(staging_key(key), key)
        else:
            for key, command, items in self.writes():
                for chunk in chunks(list(items)):
                    _queue(pipe, command=command, key=key, chunk=chunk)
        if self.reach is not None:  # the reader refuses what the copy cannot answer
            pipe.hset(self.part.reach, mapping=reach_to_fields(self.reach))
        else:
            pipe.delete(self.part.reach)


def staging_key(key: str) -> str:
    """Where a full write puts a key's contents before it replaces the key."""
    return f"{key}:staging"


def _delete(pipe: Any, *, key: str) -> None:
    pipe.delete(key)


def _queue(pipe: Any, *, command: str, key: str, chunk: list[tuple[str, Any]]) -> None:
    if command == "hset":
        pipe.hset(key, mapping=dict(chunk))
    else:
        pipe.zadd(key, dict(chunk))


async def run_pipeline(
    client: aioredis.Redis, commands: Callable[[Any], object], *, sink: str
) -> list[Any]:
    """The replies of one non-transactional pipeline of ``commands``; a failure is
    SinkUnavailableError naming ``sink``, the sink whose write it was."""
    pipe = client.pipeline(transaction=False)
    commands(pipe)
    try:
        replies: list[Any] = await pipe.execute()
    except (RedisError, OSError) as error:
        raise SinkUnavailableError(sink, str(error)) from error
    return replies


class StateCopy:
    """Plans and stages the writes of state parts, and remembers, per part, what its copy
    was last brought down to: only that part's owner writes it."""

    def __init__(self, keys: RedisKeys, reach: StateReach | None = None, *, sink: str) -> None:
        """``reach``: the days the copy must answer ``--as-of`` for (the worker's policy);
        what none of them can reach is dropped. None keeps everything. ``sink``: the name
        of the sink that writes through this copy, which its errors carry."""
        self._keys = keys
        self._sink = sink
        self._reach = reach
        # per state part, the first reached day its copy was last brought down to
        self._reached: dict[str, dt.date | None] = {}
        # per state part, what its copy answers since the last write that succeeded
        self._answers: dict[str, CopyReach] = {}

    def forget(self, part: str | None = None) -> None:
        """What a part's copy holds (every part's, if None) is no longer known."""
        if part is None:
            self._reached.clear()
            self._answers.clear()
        else:
            self._reached.pop(part, None)
            self._answers.pop(part, None)

    def written(self, plan: StatePlan) -> None:
        """The transaction that queued ``plan`` succeeded."""
        self._reached[plan.delta.part] = plan.first_day
        if plan.reach is not None:
            self._answers[plan.delta.part] = plan.reach

    async def plan(
        self, client: aioredis.Redis, delta: StateDelta, clock: dt.datetime | None
    ) -> StatePlan:
        """The commands that bring this part's copy up to ``delta``, bounded to what an
        answered ``--as-of`` day can reach from ``clock`` (models.reach; None: kept
        whole, with no reach recorded). An incremental write first reads what fell out
        of reach since the last one. A full one is staged (:meth:`stage`) before its
        transaction."""
        part = self._keys.state_part(delta.part)
        if self._reach is None or clock is None:
            return StatePlan(delta, part, None)
        clock_day = clock.astimezone(dt.UTC).date()
        first_day = self._reach.first_day(clock_day)
        answer = self._reach.copy_reach(clock_day)
        if not delta.full:  # what was dropped before stays dropped, whatever the clock says
            before = self._answers.get(delta.part) or await self._stored_reach(client, part)
            answer = CopyReach.merged([answer, before] if before else [answer]) or answer
        plan = StatePlan(delta, part, first_day, answer)
        # in a thread: a full delta holds every contract of the part
        earlier = await asyncio.to_thread(plan.split_by_reach)
        kept: dict[str, ChurnMark] = {}
        if not delta.full:
            if self._reached.get(delta.part) != first_day:
                expired, plan.unfolded = await self._out_of_reach(client, part, first_day)
                plan.gone_contracts += expired
                earlier.update(plan.unfolded)
            scopes = {churn_scope(c) for c in earlier.values()}
            kept = await self._kept_churns(client, part, scopes)
        plan.kept, plan.gone_churns = fold_churns(kept, earlier)
        plan.churns = {e: c for e, c in delta.churns.items() if e not in plan.gone_churns}
        return plan

    async def stage(self, client: aioredis.Redis, plan: StatePlan) -> None:
        """A full write's contents, written to staging keys a chunk per round trip (the
        loop serves everything else between chunks: a part holds up to hundreds of
        thousands of contracts); the transaction then renames them into place."""
        for key, command, items in plan.writes():
            staged = staging_key(key)
            await self._run(client, functools.partial(_delete, key=staged))
            written = False
            while chunk := list(itertools.islice(items, STAGE_CHUNK_FIELDS)):
                await self._run(
                    client, functools.partial(_queue, command=command, key=staged, chunk=chunk)
                )
                written = True
            if written:
                plan.staged.append(key)

    async def _out_of_reach(
        self, client: aioredis.Redis, part: StatePartKeys, first_day: dt.date
    ) -> tuple[list[str], dict[str, Churn]]:
        """Contract ids whose term ends before ``first_day``, and the churns dated before
        it that are not folded yet, by event id."""
        before = f"({first_day.toordinal()}"
        contract_ids, churn_ids = await self._run(
            client,
            lambda pipe: (
                pipe.zrangebyscore(part.contract_ends, "-inf", before),
                pipe.zrangebyscore(part.churn_days, "-inf", before),
            ),
        )
        churns: dict[str, Churn] = {}
        if churn_ids:
            (bodies,) = await self._run(client, lambda pipe: pipe.hmget(part.churns, churn_ids))
            churns = {
                text(eid): churn_from_json(body)
                for eid, body in zip(churn_ids, bodies, strict=True)
                if body is not None
            }
        return [text(cid) for cid in contract_ids], churns

    async def _stored_reach(self, client: aioredis.Redis, part: StatePartKeys) -> CopyReach | None:
        (fields,) = await self._run(client, lambda pipe: pipe.hgetall(part.reach))
        return reach_from_fields(fields)

    async def _kept_churns(
        self, client: aioredis.Redis, part: StatePartKeys, scopes: set[str]
    ) -> dict[str, ChurnMark]:
        if not scopes:
            return {}
        ordered = sorted(scopes)
        (marks,) = await self._run(client, lambda pipe: pipe.hmget(part.churn_kept, ordered))
        kept: dict[str, ChurnMark] = {}
        for scope, mark in zip(ordered, marks, strict=True):
            if mark is not None:
                day, event_id = text(mark).split("|", 1)
                kept[scope] = (dt.date.fromisoformat(day), event_id)
        return kept

    async def _run(self, client: aioredis.Redis, commands: Callable[[Any], object]) -> list[Any]:
        return await run_pipeline(client, commands, sink=self._sink)
