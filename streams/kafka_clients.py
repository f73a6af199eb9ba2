"""Starting the command-line tools' Kafka clients with an error that says what is wrong."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from models.errors import StackError


async def start_client(client: AIOKafkaProducer | AIOKafkaConsumer, bootstrap: str) -> None:
    """Start ``client``; if the broker cannot be reached, release it and raise StackError."""
    try:
        await client.start()
    except KafkaError as error:
        await client.stop()
        raise StackError(f"Kafka at {bootstrap} unreachable: {error}") from error
