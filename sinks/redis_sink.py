"""Redis sink: current values, capped history per series, pub/sub on change."""

from __future__ import annotations

import json
import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from models.errors import SinkUnavailableError
from models.state import StateDelta
from sinks.base import Publication
from sinks.codec import bucket_field, churn_to_json, contract_to_json, point_to_json
from sinks.redis_keys import RedisKeys, text


class RedisSink:
    name = "redis"

    def __init__(self, url: str, keys: RedisKeys, history_length: int = 1000) -> None:
        self._url = url
        self._keys = keys
        self._history_length = history_length
        self._client: aioredis.Redis | None = None
        self._last: dict[str, str] | None = None

    async def start(self) -> None:
        self._client = aioredis.Redis.from_url(self._url)

    async def publish(self, publication: Publication) -> None:
        if self._client is None:
            raise SinkUnavailableError(self.name, "not started")
        keys = self._keys
        if self._last is None:
            self._last = await self._read_current()
        current: dict[Any, Any] = {
            p.series_id: point_to_json(p) for p in publication.points if p.value is not None
        }
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
        pipe = self._client.pipeline(transaction=True)
        if changed:
            pipe.hset(keys.current, mapping=changed)
        if removed:
            pipe.hdel(keys.current, *removed)
        for series_id, point_json in changed.items():
            pipe.lpush(keys.history(series_id), point_json)
            pipe.ltrim(keys.history(series_id), 0, self._history_length - 1)
        pipe.hset(keys.meta, mapping=meta)
        if publication.state is not None:
            self._write_state(pipe, publication.state)
        if publication.band_change is not None:
            alert: dict[Any, Any] = publication.band_change.as_dict()
            pipe.xadd(keys.alerts, alert, maxlen=10_000)
        if changed or removed:
            message = {"clock": meta["clock"], "changed": sorted(changed), "removed": removed}
            pipe.publish(keys.updates_channel, json.dumps(message))
        try:
            await pipe.execute()
        except (RedisError, OSError) as error:
            raise SinkUnavailableError(self.name, str(error)) from error
        self._last = current

    def _write_state(self, pipe: Any, delta: StateDelta) -> None:
        """The stored copy the CLI computes ``--as-of`` from, in the same transaction."""
        keys = self._keys
        if delta.full:
            pipe.delete(keys.state_buckets, keys.state_contracts, keys.state_churns)
        present: dict[Any, Any] = {
            bucket_field(key, day): format(amount, "f")
            for (key, day), amount in delta.buckets.items()
            if amount != 0
        }
        gone = [
            bucket_field(key, day) for (key, day), amount in delta.buckets.items() if not amount
        ]
        contracts: dict[Any, Any] = {
            contract_id: contract_to_json(contract)
            for contract_id, contract in delta.contracts.items()
        }
        churns: dict[Any, Any] = {
            event_id: churn_to_json(churn) for event_id, churn in delta.churns.items()
        }
        for key, mapping in (
            (keys.state_buckets, present),
            (keys.state_contracts, contracts),
            (keys.state_churns, churns),
        ):
            items = list(mapping.items())
            for start in range(0, len(items), 5000):
                pipe.hset(key, mapping=dict(items[start : start + 5000]))
        if gone and not delta.full:
            pipe.hdel(keys.state_buckets, *gone)

    async def withdraw(self) -> None:
        """Redis is shared: the new owner overwrites what is there. Forget our copy."""
        self._last = None

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
