"""Kafka and Redis for the integration tests: a configured one, a container, or embedded.

Order of choice, for each: an environment variable naming one
(REVPULSE_TEST_KAFKA_BOOTSTRAP, REVPULSE_TEST_REDIS_URL); testcontainers when a
Docker engine answers; else the embedded Tansu broker and redis-server.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TypeVar

from sinks.base import PartSink, Sink
from streams.devstack.stack import free_port, start_broker, start_redis

S = TypeVar("S", bound="Sink | PartSink")


def docker_reachable() -> bool:
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False
    try:
        import docker

        client = docker.from_env()
        client.ping()
        client.close()
        return True
    except Exception:
        return False


@contextlib.contextmanager
def kafka_bootstrap(log_dir: Path) -> Iterator[str]:
    configured = os.environ.get("REVPULSE_TEST_KAFKA_BOOTSTRAP")
    if configured:
        yield configured
    elif docker_reachable():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as kafka:
            yield kafka.get_bootstrap_server()
    else:
        port = free_port()
        broker = start_broker(port, log_dir)
        try:
            yield f"127.0.0.1:{port}"
        finally:
            broker.stop()


@contextlib.contextmanager
def redis_url(log_dir: Path) -> Iterator[str]:
    configured = os.environ.get("REVPULSE_TEST_REDIS_URL")
    if configured:
        yield configured
    elif docker_reachable():
        from testcontainers.redis import RedisContainer

        with RedisContainer() as redis:
            host = redis.get_container_host_ip()
            yield f"redis://{host}:{redis.get_exposed_port(6379)}/0"
    else:
        port = free_port()
        server = start_redis(port, log_dir)
        try:
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            server.stop()


@contextlib.asynccontextmanager
async def started(sink: S) -> AsyncIterator[S]:
    """A sink of the Redis under test, started, and closed when the block ends."""
    await sink.start()
    try:
        yield sink
    finally:
        await sink.close()
