"""The pages a worker serves before Faust starts, while its local stores are read."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, Counter

from streams.devstack.stack import free_port
from streams.errors import StackError
from streams.ingest.http import openapi_document
from streams.pipeline.health import NOT_STARTED
from streams.pipeline.start_pages import StartPages
from streams.settings import Settings
from tests.unit.test_web import ReachableProbes


def fetch(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_alive_not_ready_with_progress_and_metrics_then_the_port_is_free() -> None:
    registry = CollectorRegistry()
    Counter("revpulse_test_reads", "a metric of the worker's registry", registry=registry).inc(3)
    port = free_port()
    with StartPages("127.0.0.1", port, registry) as pages:
        assert fetch(port, "/healthz") == (200, json.dumps({"status": "alive"}))
        pages.say("reading changelog ledger-state[0] into the empty local store: 500 of 900")
        status, body = fetch(port, "/readyz")
        assert status == 503
        ready = json.loads(body)
        assert ready["ready"] is False and ready["not_ready"] == ["recovery"]
        assert ready["recovery"].endswith("500 of 900")
        status, metrics = fetch(port, "/metrics")
        assert status == 200 and "revpulse_test_reads_total 3.0" in metrics
        assert fetch(port, "/nothing")[0] == 404
    with socket.socket() as again:  # Faust's web server binds the same port next, as
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # asyncio's does on Unix
        again.bind(("127.0.0.1", port))
        again.listen()


async def test_readyz_while_starting_has_every_key_of_the_worker_s_own() -> None:
    """A probe or board that reads a key of /readyz finds it during the start too: the
    parts not checked yet say so, and only the recovery is named not ready."""
    port = free_port()
    with StartPages("127.0.0.1", port, CollectorRegistry()) as pages:
        pages.say("reading changelog entities[1] into the empty local store: 5 of 9 records")
        status, body = fetch(port, "/readyz")
    starting = json.loads(body)
    _ready, running = await ReachableProbes().readiness(None, owns_ledger=True)
    assert status == 503 and sorted(starting) == sorted(running)
    assert starting == {
        "ready": False, "not_ready": ["recovery"], "recovery_done": False, "owns_ledger": False,
        "kafka": NOT_STARTED, "redis": NOT_STARTED, "publish": NOT_STARTED,
        "entity_parts": NOT_STARTED,
        "recovery": "reading changelog entities[1] into the empty local store: 5 of 9 records",
    }  # fmt: skip
    documented = openapi_document()["components"]["schemas"]["Readiness"]
    assert sorted(documented["required"]) == sorted(starting)
    assert sorted(documented["properties"]) == sorted(starting)


def test_a_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(StackError, match=f"127.0.0.1:{port}"):
            StartPages("127.0.0.1", port, CollectorRegistry())


def test_an_event_posted_before_the_worker_serves_is_refused_with_a_reason() -> None:
    port = free_port()
    with StartPages("127.0.0.1", port, CollectorRegistry()) as pages:
        pages.say("reading changelog id-gate[2] into the empty local store: 10 of 20 records")
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/events", data=b"[]", method="POST"
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code == 503
        assert refused.value.headers["Retry-After"] == "5"
        assert (
            "the worker is starting (reading changelog id-gate[2]" in refused.value.read().decode()
        )


def test_a_batch_as_large_as_the_ingest_takes_is_read_then_refused() -> None:
    """Not a broken pipe: the pages read the body before they answer (a socket closed
    with data unread is reset, here while the client is still sending)."""
    largest = Settings.model_fields["ingest_max_body_bytes"].default
    port = free_port()
    with StartPages("127.0.0.1", port, CollectorRegistry()):
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/events", data=b"x" * largest, method="POST"
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        with refused.value as answer:
            assert answer.code == 503 and answer.headers["Retry-After"] == "5"
