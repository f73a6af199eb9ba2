"""The Kafka key of an event: events about one entity go to one partition, in order."""

from __future__ import annotations

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
