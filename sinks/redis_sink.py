"""Redis sink: current values, capped history per series, pub/sub on change."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import itertools
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from models.book import BookedContract, Churn
from models.publication import Publication
from models.reach import ChurnMark, CopyReach, StateReach, churn_scope, fold_churns
from models.series import MetricPoint
from models.state import StateDelta
from sinks.codec import (
    bucket_field,
    churn_from_json,
    churn_to_json,
    contract_to_json,
    point_to_json,
    reach_from_fields,
    reach_to_fields,
)
from sinks.errors import SinkUnavailableError
from sinks.redis_keys import RedisKeys, StatePartKeys, text

# series whose history is pushed in one round trip: a few milliseconds of the loop each
HISTORY_CHUNK_SERIES = 250
# fields of a full state write staged per round trip: tens of milliseconds of the loop
STAGE_CHUNK_FIELDS = 2000


def _encoded(points: Iterable[MetricPoint]) -> dict[str, str]:
    """Each defined point as its Redis value, by series id."""
    return {p.series_id: point_to_json(p) for p in points if p.value is not None}


def _chunks(items: list[Any], size: int = 5000) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass
class _StatePlan:
    """What one publish writes to one part's state copy, queued in its transaction."""

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
        for chunk in _chunks(gone_buckets):
            pipe.hdel(part.buckets, *chunk)
        for chunk in _chunks(self.gone_contracts):
            pipe.hdel(part.contracts, *chunk)
            pipe.zrem(part.contract_ends, *chunk)
        for chunk in _chunks(sorted(self.gone_churns)):
            pipe.hdel(part.churns, *chunk)
        for chunk in _chunks(sorted(self.gone_churns | set(self.unfolded))):
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
                for chunk in _chunks(list(items)):
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


class RedisSink:
    """Writes only what changed since its last publish, so it must know when Redis lost
    what it holds: each publish first compares the server's ``run_id`` (new on every
    start) and looks for the meta hash every publish writes (gone after a flush)."""

    name = "redis"

    def __init__(
        self,
        url: str,
        keys: RedisKeys,
        history_length: int = 1000,
        reach: StateReach | None = None,
    ) -> None:
        """``reach``: the days the state copy must answer ``--as-of`` for (the worker's
        policy); what none of them can reach is dropped. None keeps everything."""
        self._url = url
        self._reach = reach
        # per state part, the first reached day its copy was last brought down to
        self._reached: dict[str, dt.date | None] = {}
        # per state part, what its copy answers since the last write that succeeded
        self._answers: dict[str, CopyReach] = {}
        self._keys = keys
        self._history_length = history_length
        self._client: aioredis.Redis | None = None
        self._last: dict[str, str] | None = None
        # the server's run_id when a publish last succeeded, and the one the last check saw
        self._published_run_id: str | None = None
        self._seen_run_id: str | None = None

    async def start(self) -> None:
        self._client = aioredis.Redis.from_url(self._url)

    async def check(self) -> None:
        """Raise SinkUnavailableError when Redis restarted or lost our keys since the last
        publish that succeeded: the caller then publishes everything again (publish_failed)."""
        if self._client is None:
            raise SinkUnavailableError(self.name, "not started")
        info, meta_exists = await self._server_state()
        self._seen_run_id = str(info.get("run_id", ""))
        if self._published_run_id is None:
            return  # nothing published to this server yet: the next publish writes it whole
        if self._seen_run_id != self._published_run_id:
            self._forget()
            raise SinkUnavailableError(
                self.name, "Redis restarted (run_id changed); republishing everything"
            )
        if not meta_exists:
            self._forget()
            raise SinkUnavailableError(
                self.name, f"{self._keys.meta} is gone (Redis flushed?); republishing everything"
            )

    async def _server_state(self) -> tuple[dict[str, Any], int]:
        """INFO server and whether our meta hash exists. A connection the server closed
        (it restarted) is retried once on a new one, so the restart is what gets reported."""
        assert self._client is not None
        for attempt in (1, 2):
            try:
                pipe = self._client.pipeline(transaction=False)
                pipe.info("server")
                pipe.exists(self._keys.meta)
                info, meta_exists = await pipe.execute()
                return info, meta_exists
            except RedisConnectionError as error:
                if attempt == 2:
                    raise SinkUnavailableError(self.name, str(error)) from error
            except (RedisError, OSError) as error:
                raise SinkUnavailableError(self.name, str(error)) from error
        raise AssertionError("unreachable")

    def _forget(self) -> None:
        """What we last wrote is no longer known to be there: re-read, then write it all."""
        self._last = None
        self._published_run_id = None
        self._reached.clear()
        self._answers.clear()

    async def publish(self, publication: Publication) -> None:
        if self._client is None:
            raise SinkUnavailableError(self.name, "not started")
        keys = self._keys
        await self.check()
        if self._last is None:
            self._last = await self._read_current()
        # in a thread: thousands of points take long enough to hold up the event loop
        current: dict[Any, Any] = await asyncio.to_thread(_encoded, publication.points)
        changed: dict[Any, Any] = {
            sid: text for sid, text in current.items() if self._last.get(sid) != text
        }
        removed = [sid for sid in self._last if sid not in current]
        meta: dict[Any, Any] = {
            "clock": publication.clock.isoformat(),
            "watermark": publication.watermark.isoformat() if publication.watermark else "",
            "published_at": repr(time.time()),
            "band": publication.band or "",
        }
        plan = None
        if publication.state is not None:
            plan = await self._state_plan(publication.state, publication.clock)
            if plan.delta.full:
                await self._stage(plan)
        pipe = self._client.pipeline(transaction=True)
        if changed:
            pipe.hset(keys.current, mapping=changed)
        if removed:
            pipe.hdel(keys.current, *removed)
        pipe.hset(keys.meta, mapping=meta)
        if plan is not None:  # the stored copy ``--as-of`` reads, in the same transaction
            plan.queue(pipe, keys)
        if publication.band_change is not None:
            alert: dict[Any, Any] = publication.band_change.as_dict()
            pipe.xadd(keys.alerts, alert, maxlen=10_000)
        try:
            await pipe.execute()
        except (RedisError, OSError) as error:
            raise SinkUnavailableError(self.name, str(error)) from error
        self._published_run_id = self._seen_run_id
        if plan is not None:
            self._reached[plan.delta.part] = plan.first_day
            if plan.reach is not None:
                self._answers[plan.delta.part] = plan.reach
        last = {sid: text for sid, text in self._last.items() if sid in current}
        self._last = last
        await self._write_history(changed, last)
        if changed or removed:
            message = {"clock": meta["clock"], "changed": sorted(changed), "removed": removed}
            await self._run(lambda pipe: pipe.publish(keys.updates_channel, json.dumps(message)))

    async def _write_history(self, changed: dict[Any, Any], last: dict[str, str]) -> None:
        """Each changed point pushed on its series' history, a chunk of series per round
        trip, so thousands of changed series never hold the event loop at once. A series
        counts as published (in ``last``) once its history took the point: after a
        failure, the next publish writes only what was not written yet."""
        items = list(changed.items())
        for start in range(0, len(items), HISTORY_CHUNK_SERIES):
            chunk = items[start : start + HISTORY_CHUNK_SERIES]

            def pushes(pipe: Any, chunk: list[tuple[Any, Any]] = chunk) -> None:
                for series_id, point_json in chunk:
                    pipe.lpush(self._keys.history(series_id), point_json)
                    pipe.ltrim(self._keys.history(series_id), 0, self._history_length - 1)

            await self._run(pushes)
            last.update(chunk)

    async def _stage(self, plan: _StatePlan) -> None:
        """A full write's contents, written to staging keys a chunk per round trip (the
        loop serves everything else between chunks: a part holds up to hundreds of
        thousands of contracts); the transaction then renames them into place."""
        for key, command, items in plan.writes():
            staged = staging_key(key)
            await self._run(functools.partial(_delete, key=staged))
            written = False
            while chunk := list(itertools.islice(items, STAGE_CHUNK_FIELDS)):
                await self._run(functools.partial(_queue, command=command, key=staged, chunk=chunk))
                written = True
            if written:
                plan.staged.append(key)

    async def _run(self, commands: Callable[[Any], None]) -> None:
        """One non-transactional pipeline of ``commands``."""
        assert self._client is not None
        pipe = self._client.pipeline(transaction=False)
        commands(pipe)
        try:
            await pipe.execute()
        except (RedisError, OSError) as error:
            raise SinkUnavailableError(self.name, str(error)) from error

    async def _state_plan(self, delta: StateDelta, clock: dt.datetime) -> _StatePlan:
        """The commands that bring this part's copy up to ``delta``, bounded to what an
        answered ``--as-of`` day can reach (models.reach). An incremental write first reads
        what fell out of reach since the last one: only this part's owner writes it."""
        part = self._keys.state_part(delta.part)
        if self._reach is None:
            return _StatePlan(delta, part, None)
        clock_day = clock.astimezone(dt.UTC).date()
        first_day = self._reach.first_day(clock_day)
        answer = self._reach.copy_reach(clock_day)
        if not delta.full:  # what was dropped before stays dropped, whatever the clock says
            before = self._answers.get(delta.part) or await self._stored_reach(part)
            answer = CopyReach.merged([answer, before] if before else [answer]) or answer
        plan = _StatePlan(delta, part, first_day, answer)
        # in a thread: a full delta holds every contract of the part
        earlier = await asyncio.to_thread(plan.split_by_reach)
        kept: dict[str, ChurnMark] = {}
        if not delta.full:
            if self._reached.get(delta.part) != first_day:
                expired, plan.unfolded = await self._out_of_reach(part, first_day)
                plan.gone_contracts += expired
                earlier.update(plan.unfolded)
            kept = await self._kept_churns(part, {churn_scope(c) for c in earlier.values()})
        plan.kept, plan.gone_churns = fold_churns(kept, earlier)
        plan.churns = {e: c for e, c in delta.churns.items() if e not in plan.gone_churns}
        return plan

    async def _out_of_reach(
        self, part: StatePartKeys, first_day: dt.date
    ) -> tuple[list[str], dict[str, Churn]]:
        """Contract ids whose term ends before ``first_day``, and the churns dated before
        it that are not folded yet, by event id."""
        before = f"({first_day.toordinal()}"
        contract_ids, churn_ids = await self._read(
            lambda pipe: (
                pipe.zrangebyscore(part.contract_ends, "-inf", before),
                pipe.zrangebyscore(part.churn_days, "-inf", before),
            )
        )
        churns: dict[str, Churn] = {}
        if churn_ids:
            (bodies,) = await self._read(lambda pipe: pipe.hmget(part.churns, churn_ids))
            churns = {
                text(eid): churn_from_json(body)
                for eid, body in zip(churn_ids, bodies, strict=True)
                if body is not None
            }
        return [text(cid) for cid in contract_ids], churns

    async def _stored_reach(self, part: StatePartKeys) -> CopyReach | None:
        (fields,) = await self._read(lambda pipe: pipe.hgetall(part.reach))
        return reach_from_fields(fields)

    async def _kept_churns(self, part: StatePartKeys, scopes: set[str]) -> dict[str, ChurnMark]:
        if not scopes:
            return {}
        ordered = sorted(scopes)
        (marks,) = await self._read(lambda pipe: pipe.hmget(part.churn_kept, ordered))
        kept: dict[str, ChurnMark] = {}
        for scope, mark in zip(ordered, marks, strict=True):
            if mark is not None:
                day, event_id = text(mark).split("|", 1)
                kept[scope] = (dt.date.fromisoformat(day), event_id)
        return kept

    async def _read(self, commands: Callable[[Any], object]) -> list[Any]:
        """The replies of one non-transactional pipeline of ``commands``."""
        assert self._client is not None
        pipe = self._client.pipeline(transaction=False)
        commands(pipe)
        try:
            replies: list[Any] = await pipe.execute()
        except (RedisError, OSError) as error:
            raise SinkUnavailableError(self.name, str(error)) from error
        return replies

    async def withdraw(self) -> None:
        """Redis is shared: the new owner overwrites what is there. Forget our copy."""
        self._forget()

    async def _read_current(self) -> dict[str, str]:
        """What an earlier run left, so series that became undefined get removed."""
        assert self._client is not None
        try:
            stored = await self._client.hgetall(self._keys.current)
        except (RedisError, OSError) as error:
            raise SinkUnavailableError(self.name, str(error)) from error
        return {text(key): text(value) for key, value in stored.items()}

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
