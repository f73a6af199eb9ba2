"""``POST /v1/events`` and ``GET /openapi.json`` on the worker's web server (aiohttp).

Order of checks: size (413), content type (415), signature (401), body (400/422), then
Kafka (202 once every event is acknowledged with acks=all; 503 + Retry-After if not).
Anything unexpected is logged and answered 503 + Retry-After, so the sender retries;
``event_id`` makes a retry harmless.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from importlib import resources
from typing import Any

from aiohttp import web

from models.errors import ConfigError
from models.events import Event, check_not_future
from models.ledger import check_currency
from streams.ingest.body import BodyError, ParsedBody, body_format, parse_body
from streams.ingest.metrics import IngestMetrics, build_ingest_metrics
from streams.ingest.signature import (
    SIGNATURE_HEADER,
    SOURCE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    verify,
)
from streams.kafka.producer import BrokerUnavailableError, EventProducer
from streams.settings import Settings

log = logging.getLogger(__name__)
EVENTS_PATH = "/v1/events"
OPENAPI_PATH = "/openapi.json"
MIN_SECRET_CHARS = 16
READ_CHUNK_BYTES = 64 * 1024
TRUE_VALUES = frozenset({"true", "1", "yes"})
FALSE_VALUES = frozenset({"false", "0", "no", ""})


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document kept in the repository (streams/ingest/openapi.json)."""
    text = resources.files("streams.ingest").joinpath("openapi.json").read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def check_secrets(settings: Settings) -> None:
    """Refuse to start without a secret, unless in insecure dev mode; refuse weak secrets."""
    secrets = [*settings.ingest_secrets]
    for values in settings.ingest_source_secrets.values():
        secrets.extend(values)
    if not secrets and not settings.insecure_dev_mode:
        raise ConfigError(
            "no ingestion secret: set REVPULSE_INGEST_SECRETS (a JSON list) or "
            "REVPULSE_INGEST_SOURCE_SECRETS, or REVPULSE_INSECURE_DEV_MODE=true for local "
            "development only"
        )
    if any(len(secret.get_secret_value()) < MIN_SECRET_CHARS for secret in secrets):
        raise ConfigError(f"every ingestion secret must have at least {MIN_SECRET_CHARS} chars")


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


class EventsEndpoint:
    def __init__(self, settings: Settings, sender: EventProducer, metrics: IngestMetrics) -> None:
        self.settings = settings
        self.sender = sender
        self.metrics = metrics
        self.policy = settings.policy()

    def reject(
        self,
        status: int,
        reason: str,
        message: str,
        *,
        events: list[dict[str, Any]] | None = None,
        retry_after: bool = False,
    ) -> web.Response:
        self.metrics.rejected.labels(reason).inc()
        body: dict[str, Any] = {"error": reason, "message": message}
        if events is not None:
            body["events"] = events
        headers = {"Retry-After": str(self.settings.ingest_retry_after_seconds)}
        return _json(status, body, headers if retry_after else None)

    def _secrets_for(self, source: str | None) -> list[bytes] | None:
        """The secrets valid for a request; None when unsigned requests are allowed."""
        settings = self.settings
        if source is not None and source in settings.ingest_source_secrets:
            chosen = settings.ingest_source_secrets[source]
        else:
            chosen = settings.ingest_secrets
        if not chosen and settings.insecure_dev_mode and not settings.ingest_source_secrets:
            return None
        return [secret.get_secret_value().encode() for secret in chosen]

    async def handle(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        try:
            return await self._handle(request)
        except Exception:  # never a 500: log it, ask the sender to retry
            log.exception("POST %s failed unexpectedly", EVENTS_PATH)
            return self.reject(503, "internal", "internal error; retry later", retry_after=True)
        finally:
            self.metrics.duration.observe(time.perf_counter() - started)

    async def _read_body(self, request: web.Request) -> bytes | None:
        limit = self.settings.ingest_max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            return None
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_chunked(READ_CHUNK_BYTES):
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def _handle(self, request: web.Request) -> web.Response:
        limit = self.settings.ingest_max_body_bytes
        too_large = f"the body is larger than {limit} bytes; split the batch"
        if request.content_length is not None and request.content_length > limit:
            return self.reject(413, "too_large", too_large)
        fmt = body_format(request.headers.get("Content-Type"))
        if fmt is None:
            return self.reject(
                415,
                "unsupported_media_type",
                "Content-Type must be application/json (one event or an array) "
                "or application/x-ndjson (one event per line)",
            )
        skip_text = request.query.get("skip_invalid", "false").strip().lower()
        if skip_text not in TRUE_VALUES | FALSE_VALUES:
            return self.reject(400, "invalid_request", "skip_invalid must be true or false")
        skip_invalid = skip_text in TRUE_VALUES
        body = await self._read_body(request)
        if body is None:
            return self.reject(413, "too_large", too_large)
        source = request.headers.get(SOURCE_HEADER)
        secrets = self._secrets_for(source)
        if secrets is not None:
            if not secrets:
                return self.reject(401, "unknown_source", "no secret is configured for the source")
            try:
                verify(
                    secrets,
                    request.headers.get(TIMESTAMP_HEADER),
                    request.headers.get(SIGNATURE_HEADER),
                    body,
                    now_seconds=time.time(),
                    tolerance_seconds=self.settings.ingest_signature_tolerance_seconds,
                )
            except SignatureError as error:
                return self.reject(401, error.reason, error.message)
        try:
            parsed = parse_body(body, fmt, self._check)
        except BodyError as error:
            return self.reject(400, "invalid_body", error.message)
        if parsed.bad and (not skip_invalid or not parsed.events):
            return self._invalid(parsed)
        try:
            await self.sender.send_all(parsed.events)
        except BrokerUnavailableError as error:
            log.warning("POST %s: %s", EVENTS_PATH, error)
            return self.reject(
                503, "broker_unavailable", "Kafka is unavailable; retry later", retry_after=True
            )
        self.metrics.accepted_events.inc(len(parsed.events))
        self.metrics.skipped_events.inc(len(parsed.bad))
        answer: dict[str, Any] = {"accepted": len(parsed.events), "skipped": len(parsed.bad)}
        if parsed.bad:
            answer["events"] = [bad.as_dict() for bad in parsed.bad]
        return _json(202, answer)

    def _check(self, event: Event) -> None:
        check_currency(event, self.policy)
        check_not_future(event, dt.datetime.now(dt.UTC), self.settings.max_future())

    def _invalid(self, parsed: ParsedBody) -> web.Response:
        count = len(parsed.bad)
        if not parsed.batch:
            message = "the event breaks the contract"
        elif parsed.events:
            message = (
                f"{count} of {parsed.total} events break the contract; nothing was accepted "
                "(fix them, or send ?skip_invalid=true to accept the valid ones)"
            )
        else:
            message = f"all {count} events break the contract; nothing was accepted"
        return self.reject(
            422, "invalid_events", message, events=[bad.as_dict() for bad in parsed.bad]
        )


def register_ingest_routes(app: Any, settings: Settings, registry: Any) -> IngestMetrics:
    """Add POST /v1/events and GET /openapi.json to the Faust app's aiohttp server."""
    check_secrets(settings)
    if settings.insecure_dev_mode:
        log.warning(
            "INSECURE DEV MODE: POST %s accepts unsigned requests when no secret is set",
            EVENTS_PATH,
        )
    metrics = build_ingest_metrics(registry)
    sender = EventProducer.for_http(settings)
    endpoint = EventsEndpoint(settings, sender, metrics)
    document = openapi_document()

    async def openapi(_request: web.Request) -> web.Response:
        return web.json_response(document)

    async def close(_web_app: web.Application) -> None:
        await sender.close()

    web_app: web.Application = app.web.web_app
    web_app.router.add_post(EVENTS_PATH, endpoint.handle)
    web_app.router.add_get(OPENAPI_PATH, openapi)
    web_app.on_cleanup.append(close)
    return metrics
