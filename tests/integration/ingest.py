"""Helpers for the ingestion tests: signed requests to a worker's POST /v1/events."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from streams.ingest.signature import signature_headers
from tests.integration.workers import TEST_INGEST_SECRET, WorkerHandle

Response = tuple[int, dict[str, Any], dict[str, str]]


def post(
    worker: WorkerHandle,
    body: bytes,
    *,
    secret: str | None = TEST_INGEST_SECRET,
    content_type: str = "application/json",
    timestamp: int | None = None,
    source: str | None = None,
    query: str = "",
    headers: dict[str, str] | None = None,
) -> Response:
    sent = {"Content-Type": content_type, **(headers or {})}
    if secret is not None:
        when = int(time.time()) if timestamp is None else timestamp
        sent.update(signature_headers(secret.encode(), when, body, source))
    request = urllib.request.Request(
        worker.url("/v1/events" + query), data=body, headers=sent, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}"), dict(error.headers)


def post_json(worker: WorkerHandle, value: Any, **kwargs: Any) -> Response:
    return post(worker, json.dumps(value).encode(), **kwargs)


def sample(text: str, name: str, **labels: str) -> float | None:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return found.value
    return None
