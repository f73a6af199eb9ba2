"""Writes state parts other than the ledger's to the copy in Redis: one part's delta at
a time, each in a transaction of its own, through the same machinery as the ledger's
part (sinks.state_copy): a full delta replaces that part only, the parts set lists it,
and the part is bounded to what an answered ``--as-of`` day can reach."""

from __future__ import annotations

import datetime as dt

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from models.reach import StateReach
from models.state import StateDelta
from sinks.errors import SinkUnavailableError
from sinks.redis_keys import RedisKeys
from sinks.state_copy import StateCopy, run_pipeline


class RedisPartSink:
    """Knows, per part, the server's ``run_id`` when it last wrote it: an incremental
    delta to a server that restarted since, or whose parts set no longer lists the part
    (flushed), is refused, so that the caller writes the part in full.

    Its name, the ``sink`` label of its series and of its errors, is its own: every
    worker writes the parts it holds, so its failures are not the publisher's Redis
    sink's, which only the ledger's owner writes."""

    name = "redis-parts"

    def __init__(self, url: str, keys: RedisKeys, reach: StateReach | None = None) -> None:
        """``reach``: as RedisSink's (the worker's policy); None keeps everything."""
        self._url = url
        self._keys = keys
        self._copy = StateCopy(keys, reach, sink=self.name)
        self._client: aioredis.Redis | None = None
        self._run_ids: dict[str, str] = {}  # per part, the run_id of its last write

    async def start(self) -> None:
        self._client = aioredis.Redis.from_url(self._url)

    async def write(self, delta: StateDelta, clock: dt.datetime | None) -> None:
        client = self._client
        if client is None:
            raise SinkUnavailableError(self.name, "not started")
        part = delta.part
        info, listed = await run_pipeline(
            client,
            lambda pipe: (pipe.info("server"), pipe.sismember(self._keys.state_parts, part)),
            sink=self.name,
        )
        run_id = str(info.get("run_id", ""))
        if not delta.full and (self._run_ids.get(part) != run_id or not listed):
            self.forget(part)
            raise SinkUnavailableError(
                self.name, f"the copy of state part {part} is gone (Redis restarted or was "
                "flushed): it is written again in full"
            )  # fmt: skip
        plan = await self._copy.plan(client, delta, clock)
        if delta.full:
            await self._copy.stage(client, plan)
        pipe = client.pipeline(transaction=True)
        plan.queue(pipe, self._keys)
        try:
            await pipe.execute()
        except (RedisError, OSError) as error:
            self.forget(part)
            raise SinkUnavailableError(self.name, str(error)) from error
        self._copy.written(plan)
        self._run_ids[part] = run_id

    def forget(self, part: str) -> None:
        self._run_ids.pop(part, None)
        self._copy.forget(part)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
