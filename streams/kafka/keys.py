"""The Kafka key of an event: events about one entity go to one partition, in order."""

from __future__ import annotations

from aiokafka.partitioner import murmur2

from models.events import (
    ContractSigned,
    CustomerChurned,
    Event,
    LeadConverted,
    LeadCreated,
    SpendRecorded,
)


def partition_key(event: Event) -> str:
    """The Kafka key of an event: the id of the entity it is about."""
    match event:
        case LeadCreated() | LeadConverted():
            return f"lead:{event.data.lead_id}"
        case ContractSigned():
            return f"account:{event.data.account_id}"
        case CustomerChurned():
            return f"account:{event.data.account_id}"
        case SpendRecorded():
            return f"channel:{event.data.channel}"


def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key`` among ``partitions``
    (murmur2 of its UTF-8 bytes), as Kafka Streams places a repartitioned key."""
    hashed: int = murmur2(key.encode())
    return (hashed & 0x7FFFFFFF) % partitions
