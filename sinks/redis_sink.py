"""Redis sink: current values, capped history per series, pub/sub on change."""

from __future__ import annotations

import json
import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from models.errors import SinkUnavailableError
from sinks.base import Publication
from sinks.codec import point_to_json
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
