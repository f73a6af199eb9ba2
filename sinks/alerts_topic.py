"""Alerts-topic sink: each band change, as JSON, on the Kafka alerts topic.

One sink among the others, so a failed send is a failed publish: the change stays
unsent with the ledger's owner and goes out again with the next publication.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from typing import Any, Protocol

from models.publication import Publication
from sinks.errors import SinkUnavailableError

ALERT_KEY = b"marketing_acv_band"
SEND_TIMEOUT_SECONDS = 10.0  # for the broker to take one alert


class AlertsTopic(Protocol):
    async def send(self, *, key: bytes | None = None, value: bytes | None = None) -> Awaitable[Any]:
        """Queue a message; the awaitable returned resolves when the broker took it."""
        ...


class AlertsTopicSink:
    name = "alerts"

    def __init__(self, topic: AlertsTopic, timeout_seconds: float = SEND_TIMEOUT_SECONDS) -> None:
        self._topic = topic
        self._timeout_seconds = timeout_seconds

    async def start(self) -> None:
        return None

    async def publish(self, publication: Publication) -> None:
        change = publication.band_change
        if change is None:
            return
        body = json.dumps(change.as_dict()).encode()
        try:
            async with asyncio.timeout(self._timeout_seconds):
                delivered = await self._topic.send(key=ALERT_KEY, value=body)
                await delivered
        except Exception as error:  # not sent, or not known to be: sent again next time
            raise SinkUnavailableError(self.name, f"{type(error).__name__}: {error}") from error

    async def check(self) -> None:
        return None  # holds nothing that could be lost

    async def withdraw(self) -> None:
        return None  # the topic keeps what it was sent

    async def close(self) -> None:
        return None
