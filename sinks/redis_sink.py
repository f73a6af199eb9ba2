"""Redis sink: current values, capped history per series, pub/sub on change, and the
ledger's part of the state copy (sinks.state_copy) in the same transaction."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from models.publication import Publication
from models.reach import StateReach
from models.series import MetricPoint
from sinks.codec import point_to_json
from sinks.errors import SinkUnavailableError
from sinks.redis_keys import RedisKeys, text
from sinks.state_copy import StateCopy, run_pipeline

# series whose history is pushed in one round trip: a few milliseconds of the loop each
HISTORY_CHUNK_SERIES = 250


def _encoded(points: Iterable[MetricPoint]) -> dict[str, str]:
    """Each defined point as its Redis value, by series id."""
    return {p.series_id: point_to_json(p) for p in points if p.value is not None}


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
        self._copy = StateCopy(keys, reach, sink=self.name)
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
        self._copy.forget()

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
            plan = await self._copy.plan(self._client, publication.state, publication.clock)
            if plan.delta.full:
                await self._copy.stage(self._client, plan)
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
            self._copy.written(plan)
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

    async def _run(self, commands: Callable[[Any], None]) -> None:
        """One non-transactional pipeline of ``commands`` (sinks.state_copy.run_pipeline)."""
        assert self._client is not None
        await run_pipeline(self._client, commands, sink=self.name)

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
