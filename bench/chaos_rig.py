"""The chaos runner's moving parts: the embedded servers it can pause, kill and restart, the
workers it starts and kills, and a sender that counts only what was acknowledged."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiohttp
from aiokafka import AIOKafkaProducer

from bench.pipeline import Samples, WorkerProcess, parse_samples
from models.events import Event
from streams.devstack.stack import ChildProcess, free_port, start_broker, start_redis
from streams.ingest.signature import signature_headers
from streams.settings import Settings

CHAOS_SECRET = "chaos-ingest-secret-0123456789"
SEND_GIVE_UP_SECONDS = 120.0  # a record not acknowledged by then is not counted as sent
Kind = Literal["valid", "resend", "conflict", "poison"]


class Servers:
    """The embedded broker and Redis on free ports; either can be paused, Redis restarted."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.broker_port, self.redis_port = free_port(), free_port()
        self.broker: ChildProcess | None = None
        self.redis: ChildProcess | None = None
        self.paused: set[str] = set()

    @property
    def kafka(self) -> str:
        return f"127.0.0.1:{self.broker_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def start(self) -> None:
        self.broker = start_broker(self.broker_port, self.log_dir)
        self.redis = start_redis(self.redis_port, self.log_dir)

    def _child(self, name: str) -> ChildProcess:
        child = self.broker if name == "broker" else self.redis
        assert child is not None, f"{name} not started"
        return child

    def pause(self, name: Literal["broker", "redis"]) -> None:
        self._child(name).process.send_signal(signal.SIGSTOP)
        self.paused.add(name)

    def resume(self, name: str) -> None:
        if name in self.paused:
            self._child(name).process.send_signal(signal.SIGCONT)
            self.paused.discard(name)

    def restart_redis(self) -> None:
        """SIGKILL Redis and start an empty one on the same port (no persistence)."""
        self.resume("redis")
        self._child("redis").kill()
        self.redis = start_redis(self.redis_port, self.log_dir)

    def stop(self) -> None:
        for name in list(self.paused):  # a stopped process cannot act on SIGTERM
            self.resume(name)
        for child in (self.redis, self.broker):
            if child is not None:
                child.stop(timeout_seconds=5)
        self.broker = self.redis = None


def scenario_overrides(servers: Servers, name: str, partitions: int) -> dict[str, Any]:
    """Settings of one scenario's workers: its own app id, topics and Redis prefix."""
    tag = f"chaos-{name}-{uuid.uuid4().hex[:6]}"
    return {
        "kafka_bootstrap": servers.kafka,
        "redis_url": servers.redis_url,
        "app_id": tag,
        "events_topic": f"{tag}-events",
        "by_id_topic": f"{tag}-by-id",
        "facts_topic": f"{tag}-facts",
        "dead_letter_topic": f"{tag}-dead-letters",
        "late_topic": f"{tag}-late",
        "alerts_topic": f"{tag}-alerts",
        "redis_prefix": tag,
        "partitions": partitions,
        "session_timeout_seconds": 6.0,  # the least allowed: a killed member leaves sooner
        "publish_interval_seconds": 0.5,
        "ingest_secrets": [CHAOS_SECRET],
    }


@dataclass
class Crew:
    """One scenario's workers; each started on its own web port and data directory."""

    overrides: dict[str, Any]
    log_dir: Path
    workers: list[WorkerProcess] = field(default_factory=list)
    started: int = 0

    @property
    def settings(self) -> Settings:
        return Settings(**self.overrides)

    def add(self, ready_timeout_seconds: float = 120) -> WorkerProcess:
        overrides = {**self.overrides, "web_port": free_port()}
        self.started += 1
        worker = WorkerProcess(
            Settings(**overrides), overrides, self.log_dir / f"worker{self.started}"
        )
        self.workers.append(worker)
        worker.wait_ready(ready_timeout_seconds)
        return worker

    def kill(self, worker: WorkerProcess) -> None:
        """SIGKILL, as in a crash."""
        worker.child.kill()
        self.workers.remove(worker)

    def leave(self, worker: WorkerProcess) -> None:
        """SIGTERM: a clean shutdown, the worker leaves the group."""
        worker.child.stop(timeout_seconds=20)
        self.workers.remove(worker)

    def scrape(self) -> list[tuple[Samples, int]]:
        """Each live worker's /metrics, parsed, with the page size in bytes."""
        found = []
        for worker in self.workers:
            try:
                worker.check_alive()
                status, body = worker._get("/metrics")
            except (OSError, RuntimeError):
                continue
            if status == 200:
                found.append((parse_samples(body), len(body.encode())))
        return found

    def stop(self) -> None:
        """SIGKILL: the scenario is over and its topics are never read again."""
        for worker in self.workers:
            worker.child.kill()
        self.workers.clear()


@dataclass
class Sent:
    """One record the runner sent, what it expects of it, and the answer it got."""

    kind: Kind
    label: str  # the event type, or what the poison is
    event_id: str | None
    event: Event | None  # the parsed event (None for poison that does not parse)
    via: Literal["kafka", "http"] = "kafka"
    partition: int | None = None
    offset: int | None = None
    status: int | None = None  # the HTTP answer


@dataclass
class Outgoing:
    value: bytes | None
    key: bytes | None
    sent: Sent
    partition: int | None = None


class Sender:
    """Kafka (acks=all) and signed HTTP, each retried until acknowledged or given up."""

    def __init__(self, settings: Settings, http_url: str | None = None) -> None:
        self.settings = settings
        self.http_url = http_url
        self.log: list[Sent] = []
        self.unacknowledged = 0
        self.retries = 0
        self._producer: AIOKafkaProducer | None = None
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Sender:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            acks="all",
            linger_ms=5,
            request_timeout_ms=5000,
            retry_backoff_ms=200,
        )
        await self._producer.start()
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._producer is not None:
            await self._producer.stop()
        if self._session is not None:
            await self._session.close()

    async def kafka(self, batch: list[Outgoing]) -> None:
        """Send in order; resend what failed until acknowledged or SEND_GIVE_UP_SECONDS."""
        assert self._producer is not None
        topic = self.settings.events_topic
        deadline = time.monotonic() + SEND_GIVE_UP_SECONDS
        pending = list(batch)
        while pending and time.monotonic() < deadline:
            futures = []
            for item in pending:
                try:
                    futures.append(
                        await asyncio.wait_for(
                            self._producer.send(
                                topic, value=item.value, key=item.key, partition=item.partition
                            ),
                            timeout=15,
                        )
                    )
                except Exception as error:  # the broker is paused or gone: retry below
                    futures.append(_failed(error))
            failed = []
            for item, future in zip(pending, futures, strict=True):
                try:
                    metadata = await asyncio.wait_for(future, timeout=15)
                except Exception:
                    failed.append(item)
                    continue
                item.sent.partition, item.sent.offset = metadata.partition, metadata.offset
                self.log.append(item.sent)
            if failed:
                self.retries += len(failed)
                await asyncio.sleep(0.5)
            pending = failed
        self.unacknowledged += len(pending)

    async def http(self, body: bytes, sent: Sent, content_type: str = "application/json") -> None:
        """POST one body (signed); a 503 or no answer is retried, any other answer is final."""
        assert self._session is not None and self.http_url is not None
        sent.via = "http"
        deadline = time.monotonic() + SEND_GIVE_UP_SECONDS
        while time.monotonic() < deadline:
            headers = {"Content-Type": content_type}
            headers.update(signature_headers(CHAOS_SECRET.encode(), int(time.time()), body))
            try:
                async with self._session.post(self.http_url, data=body, headers=headers) as answer:
                    await answer.read()
                    if answer.status != 503:
                        sent.status = answer.status
                        self.log.append(sent)
                        return
                    wait_seconds = min(2.0, float(answer.headers.get("Retry-After", "1")))
            except (aiohttp.ClientError, TimeoutError):
                wait_seconds = 0.5
            self.retries += 1
            await asyncio.sleep(wait_seconds)
        self.unacknowledged += 1


def _failed(error: BaseException) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_exception(error)
    return future


def json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()
