"""The Redis sink notices a Redis that restarted (or was flushed) and asks for everything."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from models.events import event_to_json
from models.keyed import MemoryMaps
from models.policy import MetricPolicy
from models.series import compute_points
from sinks.errors import SinkUnavailableError
from sinks.readback import read_current, read_state
from sinks.redis_keys import RedisKeys
from sinks.redis_sink import RedisSink
from streams.devstack.stack import ChildProcess, free_port, start_redis
from streams.pipeline.owner import LedgerOwner
from tests.integration.servers import started
from tests.unit.builders import contract, conversion, lead

pytestmark = pytest.mark.timeout(60)
T0 = dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)
KEYS = RedisKeys("rp-restart")


class RedisServer:
    """A redis-server of our own on a fixed port, so it can be replaced by an empty one."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.log_dir = log_dir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.child: ChildProcess = start_redis(self.port, log_dir)

    def restart_empty(self) -> None:
        """SIGKILL, then a new server on the same port: nothing is persisted."""
        self.child.kill()
        self.child = start_redis(self.port, self.log_dir)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    handle = RedisServer(tmp_path)
    try:
        yield handle
    finally:
        handle.child.stop()


def ledger_owner() -> LedgerOwner:
    built = LedgerOwner(MetricPolicy(), "event", "30d")
    built.install(built.load(MemoryMaps()))
    events = [
        lead("e1", "L1", "2026-03-01"),
        lead("e2", "L2", "2026-03-02", channel="organic"),
        conversion("e3", "L1", "2026-03-03"),
        contract("e4", "C1", "2026-03-05", lead_id="L1", recurring_value="24000"),
    ]
    built.apply_batch([event_to_json(e).encode() for e in events])
    return built


async def stored_series(url: str) -> dict[str, object]:
    points, _meta = await read_current(url, KEYS)
    return {p.series_id: p.value for p in points}


async def test_a_restarted_redis_is_detected_and_then_rewritten_whole(
    server: RedisServer,
) -> None:
    owner = ledger_owner()
    async with started(RedisSink(server.url, KEYS)) as sink:
        first = owner.publication(T0)
        assert first is not None and first.state is not None and first.state.full
        await sink.publish(first)
        owner.published()
        before = await stored_series(server.url)
        assert len(before) > 20

        server.restart_empty()
        assert await stored_series(server.url) == {}
        # one more event: a small delta, most series unchanged since the last publish
        owner.apply_batch([event_to_json(lead("e5", "L5", "2026-03-06")).encode()])
        delta = owner.publication(T0)
        assert delta is not None and delta.state is not None and not delta.state.full
        with pytest.raises(SinkUnavailableError, match=r"Redis restarted \(run_id changed\)"):
            await sink.publish(delta)
        assert await stored_series(server.url) == {}  # nothing half-written

        owner.publish_failed()  # what the worker does on a sink error
        again = owner.publication(T0)
        assert again is not None and again.state is not None and again.state.full
        await sink.publish(again)
        expected = {p.series_id: p.value for p in again.points if p.value is not None}
        assert await stored_series(server.url) == expected
        assert len(expected) >= len(before)
        state = await read_state(server.url, KEYS, MetricPolicy())
        assert owner.ledger is not None
        day = T0.date()
        assert compute_points(state, day) == compute_points(owner.ledger, day)


async def test_an_idle_check_notices_the_restart_without_a_publication(
    server: RedisServer,
) -> None:
    owner = ledger_owner()
    async with started(RedisSink(server.url, KEYS)) as sink:
        publication = owner.publication(T0)
        assert publication is not None
        await sink.publish(publication)
        await sink.check()  # the same server, our keys present: fine
        server.restart_empty()
        with pytest.raises(SinkUnavailableError, match="Redis restarted"):
            await sink.check()
        await sink.check()  # told once; the next full publish starts over


async def test_a_flushed_redis_is_detected(server: RedisServer) -> None:
    owner = ledger_owner()
    async with started(RedisSink(server.url, KEYS)) as sink:
        publication = owner.publication(T0)
        assert publication is not None
        await sink.publish(publication)
        async with aioredis.Redis.from_url(server.url) as client:
            await client.flushdb()
        with pytest.raises(SinkUnavailableError, match="is gone"):
            await sink.check()
