"""A command-line tool that cannot reach Kafka says so in one line, and leaks no client."""

from __future__ import annotations

import gc
import warnings

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from models.errors import RevpulseError
from streams.devstack.stack import free_port
from streams.errors import StackError
from streams.kafka.clients import start_client
from streams.kafka.producer import event_producer
from streams.settings import Settings


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
