"""A command-line tool that cannot reach Kafka says so in one line, and leaks no client."""

from __future__ import annotations

import asyncio
import gc
import warnings
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from models.errors import RevpulseError
from streams.devstack.stack import free_port
from streams.errors import StackError
from streams.kafka.clients import start_client
from streams.kafka.producer import BrokerUnavailableError, EventProducer, event_producer
from streams.settings import Settings
from tests.unit.builders import spend


@pytest.fixture
def closed_bootstrap() -> str:
    return f"127.0.0.1:{free_port()}"  # nothing listens there


async def test_unreachable_broker_is_a_revpulse_error_naming_it(closed_bootstrap: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=closed_bootstrap, request_timeout_ms=2000)
    with pytest.raises(StackError, match=f"Kafka at {closed_bootstrap} unreachable"):
        await start_client(producer, closed_bootstrap)


async def test_consumer_too(closed_bootstrap: str) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=closed_bootstrap, request_timeout_ms=2000)
    with pytest.raises(RevpulseError, match="unreachable"):
        await start_client(consumer, closed_bootstrap)


async def test_event_producer_releases_the_client(closed_bootstrap: str) -> None:
    settings = Settings(kafka_bootstrap=closed_bootstrap)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(StackError):
            async with event_producer(settings):
                pytest.fail("the producer started without a broker")
        gc.collect()
    assert not [w for w in caught if "Unclosed" in str(w.message)]


async def test_http_send_without_a_broker_is_broker_unavailable_and_leaks_nothing(
    closed_bootstrap: str,
) -> None:
    settings = Settings(kafka_bootstrap=closed_bootstrap, ingest_ack_timeout_seconds=3)
    producer = EventProducer.for_http(settings)  # lazy: nothing is contacted yet
    event = spend("e-1", "ads", "10.00", "2024-01-02")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = await asyncio.gather(
            producer.send_all([event]), producer.send_all([event]), return_exceptions=True
        )
        gc.collect()
    assert [type(result) for result in results] == [BrokerUnavailableError] * 2
    assert not [w for w in caught if "Unclosed" in str(w.message)]
    await producer.close()


def test_one_module_writes_the_events_topic() -> None:
    """Every events-topic producer in the service is streams/kafka/producer.py's."""
    root = Path(__file__).resolve().parents[2] / "streams"
    constructing = sorted(
        str(path.relative_to(root.parent))
        for path in root.rglob("*.py")
        if "AIOKafkaProducer(" in path.read_text(encoding="utf-8")
    )
    assert constructing == ["streams/kafka/producer.py"]
