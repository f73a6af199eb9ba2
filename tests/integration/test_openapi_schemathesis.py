"""schemathesis against a running worker: no 5xx, no response that breaks the OpenAPI document.

Most requests are signed (like a CRM would), so generated bodies reach validation and
Kafka; every fourth is sent unsigned, to cover the 401 answers too.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from streams.ingest.signature import signature_headers
from tests.integration.workers import (
    TEST_INGEST_SECRET,
    WorkerHandle,
    isolated_settings,
    start_worker,
)

pytestmark = pytest.mark.timeout(120)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@schemathesis.serializer("application/x-ndjson")
def _ndjson(_context: Any, value: Any) -> bytes:
    items = value if isinstance(value, list) else [value]
    return "".join(json.dumps(item) + "\n" for item in items).encode()


class CrmSignature(requests.auth.AuthBase):
    """Signs the exact body bytes requests is about to send; leaves every 4th unsigned."""

    def __init__(self) -> None:
        self._count = itertools.count()

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if next(self._count) % 4 == 3:
            return request
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        secret = TEST_INGEST_SECRET.encode()
        request.headers.update(signature_headers(secret, int(time.time()), body))
        return request


@pytest.fixture(scope="module")
def worker(
    kafka: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerHandle]:
    handle = start_worker(isolated_settings(kafka, redis_url), tmp_path_factory.mktemp("st"))
    yield handle
    handle.stop()


# schemathesis leaves out the document it was loaded from (GET /openapi.json)
# POSITIVE: requests that fit the document; NEGATIVE: requests that break it
RUNS = [
    ("POST /v1/events", GenerationMode.POSITIVE),
    ("POST /v1/events", GenerationMode.NEGATIVE),
    ("GET /healthz", GenerationMode.POSITIVE),
    ("GET /readyz", GenerationMode.POSITIVE),
]


@pytest.mark.parametrize(("label", "mode"), RUNS)
def test_api_answers_within_its_document(
    worker: WorkerHandle, label: str, mode: GenerationMode
) -> None:
    # schemathesis' own pytest loader does not run on pytest 9: drive hypothesis directly
    schema = schemathesis.openapi.from_url(worker.url("/openapi.json"))
    (operation,) = [
        result.ok() for result in schema.get_all_operations() if result.ok().label == label
    ]
    seen: set[int] = set()
    with requests.Session() as session:
        session.auth = CrmSignature()

        @given(case=operation.as_strategy(mode))
        @settings(
            max_examples=60 if label.startswith("POST") else 5,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            response = case.call(session=session, timeout=30)
            seen.add(response.status_code)
            case.validate_response(response, checks=CHECKS)

        check()
    assert not any(status >= 500 for status in seen)
    if label.startswith("POST") and mode is GenerationMode.POSITIVE:
        assert {202, 401} <= seen, seen  # signed bodies reached Kafka; unsigned were refused
