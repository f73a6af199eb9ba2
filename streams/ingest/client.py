"""Sending events to ``POST /v1/events`` the way a CRM integration does: signed NDJSON batches.

Used by ``revpulse replay --via http`` and ``revpulse simulate --via http``. A 503 is
retried after its Retry-After; any other error stops the sender with the server's message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from models.errors import RevpulseError
from models.events import Event, event_to_json
from streams.ingest.signature import signature_headers
from streams.settings import Settings

log = logging.getLogger(__name__)
NDJSON = "application/x-ndjson"
MAX_ATTEMPTS = 6


class IngestRejectedError(RevpulseError):
    """The endpoint refused a batch (4xx): retrying the same request cannot help."""

    def __init__(self, status: int, body: str) -> None:
        self.status = status
        self.body = body
        super().__init__(f"POST /v1/events answered {status}: {body[:2000]}")


def ingest_url(settings: Settings) -> str:
    """REVPULSE_INGEST_URL, else the local worker's endpoint."""
    if settings.ingest_url:
        return settings.ingest_url
    host = "127.0.0.1" if settings.web_host in ("0.0.0.0", "::", "") else settings.web_host
    return f"http://{host}:{settings.web_port}/v1/events"


def signing_secret(settings: Settings) -> bytes | None:
    """The secret a client signs with: its source's newest, else the newest shared one."""
    source = settings.ingest_source
    if source is not None and settings.ingest_source_secrets.get(source):
        return settings.ingest_source_secrets[source][0].get_secret_value().encode()
    if settings.ingest_secrets:
        return settings.ingest_secrets[0].get_secret_value().encode()
    return None


def ndjson_body(events: Sequence[Event]) -> bytes:
    return "".join(event_to_json(event) + "\n" for event in events).encode()


class HttpEventSender:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        secret: bytes | None,
        source: str | None,
    ) -> None:
        self._session = session
        self._url = url
        self._secret = secret
        self._source = source

    def headers(self, body: bytes, now_seconds: float, content_type: str) -> dict[str, str]:
        headers = {"Content-Type": content_type}
        if self._secret is not None:
            headers.update(signature_headers(self._secret, int(now_seconds), body, self._source))
        elif self._source is not None:
            headers["X-Revpulse-Source"] = self._source
        return headers

    async def send(self, events: Sequence[Event]) -> dict[str, Any]:
        """POST one NDJSON batch; return the 202 body once Kafka acknowledged every event."""
        return await self.post(ndjson_body(events), NDJSON)

    async def send_one(self, event: Event) -> dict[str, Any]:
        """POST one event as a JSON object, as a CRM webhook does."""
        return await self.post(event_to_json(event).encode(), "application/json")

    async def post(self, body: bytes, content_type: str) -> dict[str, Any]:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            # signed afresh on every attempt: the timestamp must stay within the tolerance
            headers = self.headers(body, time.time(), content_type)
            try:
                async with self._session.post(self._url, data=body, headers=headers) as response:
                    text = await response.text()
                    if response.status == 202:
                        answer: dict[str, Any] = json.loads(text)
                        return answer
                    if response.status != 503:
                        raise IngestRejectedError(response.status, text)
                    wait_seconds = float(response.headers.get("Retry-After", "1"))
            except aiohttp.ClientError as error:
                if attempt == MAX_ATTEMPTS:
                    raise RevpulseError(f"cannot reach {self._url}: {error}") from error
                wait_seconds = 1.0
            log.warning("ingest busy or unreachable; retry %d in %.0f s", attempt, wait_seconds)
            await asyncio.sleep(wait_seconds)
        raise RevpulseError(f"{self._url} still unavailable after {MAX_ATTEMPTS} attempts")


@asynccontextmanager
async def http_sender(settings: Settings) -> AsyncIterator[HttpEventSender]:
    timeout = aiohttp.ClientTimeout(total=settings.ingest_ack_timeout_seconds + 30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        yield HttpEventSender(
            session, ingest_url(settings), signing_secret(settings), settings.ingest_source
        )
