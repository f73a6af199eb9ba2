"""POST /v1/events on a real worker: signatures, errors, acks, readiness, simulate, dlq."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.devstack.stack import free_port, start_broker
from streams.kafka.producer import event_producer
from streams.settings import Settings
from tests.integration.ingest import post, post_json, sample
from tests.integration.scenario import SCENARIO
from tests.integration.workers import (
    TEST_INGEST_SECRET,
    WorkerHandle,
    isolated_settings,
    run_cli,
    start_worker,
    wait_for,
)

pytestmark = pytest.mark.timeout(240)
HUBSPOT_SECRET = "hubspot-secret-new-0123456789"
HUBSPOT_OLD_SECRET = "hubspot-secret-old-0123456789"
MAX_BODY_BYTES = 64 * 1024


@pytest.fixture(scope="module")
def worker(
    kafka: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerHandle]:
    settings = isolated_settings(
        kafka,
        redis_url,
        ingest_source_secrets={"hubspot": [HUBSPOT_SECRET, HUBSPOT_OLD_SECRET]},
        ingest_max_body_bytes=MAX_BODY_BYTES,
    )
    handle = start_worker(settings, tmp_path_factory.mktemp("ingest"))
    yield handle
    handle.stop()


def metrics_json(settings: Settings) -> list[dict[str, str]]:
    result = run_cli(settings, "metrics", "--json")
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def value_of(settings: Settings, metric: str, window: str) -> str | None:
    for point in metrics_json(settings):
        key = (point["metric"], point["window"], point["origin"], point["channel"])
        if key == (metric, window, "all", "all"):
            return point["value"]
    return None


def test_signed_webhook_with_a_contract_shows_up_in_metrics(worker: WorkerHandle) -> None:
    contract = next(e for e in SCENARIO if e["event_id"] == "e7")  # ACV 8,000, TCV 25,500
    started = time.monotonic()
    status, body, _ = post_json(worker, contract)
    assert (status, body) == (202, {"accepted": 1, "skipped": 0})
    wait_for(
        lambda: value_of(worker.settings, "bookings_tcv", "30d") == "25500",
        timeout_seconds=15,
        what="the contract's TCV in `revpulse metrics`",
    )
    assert time.monotonic() - started < 15


def test_unsigned_wrong_and_replayed_requests_get_401_and_are_counted(
    worker: WorkerHandle,
) -> None:
    event = SCENARIO[0]
    before = {
        reason: sample(
            worker.metrics_text(), "revpulse_http_requests_rejected_total", reason=reason
        )
        or 0
        for reason in ("unsigned", "bad_signature", "stale_timestamp")
    }
    unsigned = post_json(worker, event, secret=None)
    wrong = post_json(worker, event, secret="not-the-secret-0123456789")
    replayed = post_json(worker, event, timestamp=int(time.time()) - 301)
    for (status, body, _headers), reason in (
        (unsigned, "unsigned"),
        (wrong, "bad_signature"),
        (replayed, "stale_timestamp"),
    ):
        assert status == 401, body
        assert body["error"] == reason
        assert TEST_INGEST_SECRET not in json.dumps(body)
    assert "X-Revpulse-Timestamp" in unsigned[1]["message"]
    assert "tolerance is 300 s" in replayed[1]["message"]
    text = worker.metrics_text()
    for reason, count in before.items():
        assert sample(text, "revpulse_http_requests_rejected_total", reason=reason) == count + 1


def test_per_source_secrets_and_rotation(worker: WorkerHandle) -> None:
    event = {**SCENARIO[1], "event_id": "src-1"}
    for secret in (HUBSPOT_SECRET, HUBSPOT_OLD_SECRET):
        status, _, _ = post_json(worker, event, secret=secret, source="hubspot")
        assert status == 202
    # a source with its own secrets does not take the shared secret
    status, body, _ = post_json(worker, event, source="hubspot")
    assert (status, body["error"]) == (401, "bad_signature")
    # nor does the shared secret's sender get in with the source's secret
    status, _, _ = post_json(worker, event, secret=HUBSPOT_SECRET)
    assert status == 401


def test_size_and_content_type_limits(worker: WorkerHandle) -> None:
    big = json.dumps([SCENARIO[0]] * (MAX_BODY_BYTES // 100)).encode()
    assert len(big) > MAX_BODY_BYTES
    status, body, _ = post(worker, big)
    assert (status, body["error"]) == (413, "too_large")
    status, body, _ = post(worker, b"event_id,type", content_type="text/csv")
    assert (status, body["error"]) == (415, "unsupported_media_type")
    status, body, _ = post(worker, b"{not json")
    assert (status, body["error"]) == (400, "invalid_body")
    text = worker.metrics_text()
    assert (sample(text, "revpulse_http_requests_rejected_total", reason="too_large") or 0) >= 1


def test_a_batch_is_all_or_nothing_unless_skip_invalid(worker: WorkerHandle) -> None:
    good = {**SCENARIO[2], "event_id": "batch-good"}
    bad = {**SCENARIO[3], "event_id": "batch-bad", "data": {"lead_id": "L9"}}
    status, body, _ = post_json(worker, [good, bad, good])
    assert status == 422
    assert body["error"] == "invalid_events"
    assert [item["index"] for item in body["events"]] == [1]
    fields = {problem["field"] for problem in body["events"][0]["problems"]}
    assert fields == {"data.channel", "data.origin"}
    status, body, _ = post_json(worker, [good, bad], query="?skip_invalid=true")
    assert status == 202 and body["accepted"] == 1 and body["skipped"] == 1
    assert body["events"][0]["index"] == 1
    ndjson = (json.dumps(good) + "\n" + "{oops\n").encode()
    status, body, _ = post(worker, ndjson, content_type="application/x-ndjson")
    assert status == 422 and body["events"][0]["line"] == 2


def test_openapi_and_readiness_pages(worker: WorkerHandle) -> None:
    status, text = worker.get("/openapi.json")
    document = json.loads(text)
    assert status == 200 and "/v1/events" in document["paths"]
    repo_copy = json.loads(
        (Path(__file__).parents[2] / "streams" / "ingest" / "openapi.json").read_text()
    )
    assert document == repo_copy
    status, text = worker.get("/readyz")
    ready = json.loads(text)
    assert status == 200
    assert ready["not_ready"] == [] and ready["kafka"] == ready["redis"] == "ok"
    assert ready["recovery_done"] is True


def test_simulate_via_http_signs_like_a_crm(worker: WorkerHandle) -> None:
    before = sample(worker.metrics_text(), "revpulse_http_events_accepted_total") or 0
    result = run_cli(
        worker.settings,
        "simulate",
        "--via",
        "http",
        "--count",
        "10",
        "--rate",
        "50",
        "--seed",
        "3",
        "--duration",
        "30",
    )
    assert result.returncode == 0, result.stderr
    after = sample(worker.metrics_text(), "revpulse_http_events_accepted_total") or 0
    assert after - before >= 10


def test_dead_letters_are_listed_and_fixed_ones_resubmitted(
    worker: WorkerHandle, tmp_path: Path
) -> None:
    settings = worker.settings
    broken = {**SCENARIO[0], "event_id": "dlq-1", "type": "lead.create"}

    async def write_raw() -> None:
        async with event_producer(settings) as producer:
            await producer.send_raw(json.dumps(broken).encode(), key=b"dlq")

    asyncio.run(write_raw())

    def listed() -> list[dict[str, object]]:
        result = run_cli(settings, "dlq", "--json", "--limit", "50")
        assert result.returncode == 0, result.stderr
        letters = [json.loads(line) for line in result.stdout.splitlines()]
        return [letter for letter in letters if "dlq-1" in str(letter["payload"])]

    (letter,) = wait_for(listed, timeout_seconds=30, what="the dead letter listed")
    assert "unknown event type 'lead.create'" in str(letter["reason"])
    assert letter["source_topic"] == settings.events_topic
    assert isinstance(letter["source_offset"], int) and isinstance(letter["source_partition"], int)
    human = run_cli(settings, "dlq", "--limit", "50").stdout
    assert "unknown event type" in human and f"{settings.events_topic}[" in human

    exported = tmp_path / "dead.ndjson"
    assert run_cli(settings, "dlq", "--export", str(exported), "--limit", "50").returncode == 0
    lines = exported.read_text().splitlines()
    fixed = [line.replace('"lead.create"', '"lead.created"') for line in lines if "dlq-1" in line]
    exported.write_text("\n".join(fixed) + "\n")
    result = run_cli(settings, "dlq", "--resubmit", str(exported), "--via", "http")
    assert result.returncode == 0, result.stderr
    wait_for(
        lambda: (
            (
                sample(worker.metrics_text(), "revpulse_events_consumed_total", type="lead.created")
                or 0
            )
            >= 1
        ),
        what="the fixed event consumed",
    )


def test_broker_down_gives_503_with_retry_after_and_readyz_names_kafka(
    redis_url: str, tmp_path: Path
) -> None:
    port = free_port()
    broker = start_broker(port, tmp_path)
    settings = isolated_settings(f"127.0.0.1:{port}", redis_url, ingest_ack_timeout_seconds=3)
    worker = start_worker(settings, tmp_path)
    try:
        assert post_json(worker, {**SCENARIO[0], "event_id": "up"})[0] == 202
        broker.stop()
        started = time.monotonic()
        status, body, headers = post_json(worker, {**SCENARIO[0], "event_id": "down"})
        assert (status, body["error"]) == (503, "broker_unavailable")
        assert int(headers["Retry-After"]) >= 1
        assert time.monotonic() - started < 10
        status, text = worker.get("/readyz")
        assert status == 503
        assert json.loads(text)["not_ready"] == ["kafka"]
    finally:
        worker.stop()
        broker.stop()
