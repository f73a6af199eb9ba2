"""A real Prometheus and Alertmanager (Debian packages) watching a real worker.

Shared by test_prometheus_real.py and test_alertmanager_real.py through the
session-scoped ``monitored`` fixture (imported in conftest.py), so the worker,
Prometheus and Alertmanager start once for both.

The configs are generated from the files in deploy/ by small text rewrites, each
checked to apply exactly where expected, so a change to deploy/ that these rewrites
no longer fit fails the test loudly rather than testing something else:

* prometheus.yml: 1 s scrape and evaluation intervals; the worker, Prometheus and
  Alertmanager targets moved to 127.0.0.1 and the ports the test picked. The rule
  files are the deploy/ ones, with one change to alert_rules.yml below.
* alert_rules.yml: TEST ONLY, the band alerts' ``for:`` (15m and 30m in production)
  is shortened to 2 s and 4 s, in the same order as in production (under fires
  first, so Alertmanager inhibits the moderate alert). Nothing else changes, and the
  production files are never written.
* alertmanager.yml: the band webhook URL points at a receiver run by the test, and
  the band route's group_wait (30 s) is 1 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis

from models.events import parse_event
from streams.devstack.stack import ChildProcess, free_port, spawn, start_redis, wait_for_port
from streams.kafka.producer import event_producer
from streams.settings import Settings
from tests.integration.workers import WorkerHandle, isolated_settings, start_worker, wait_for

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMETHEUS_BIN = "prometheus"
ALERTMANAGER_BIN = "prometheus-alertmanager"
# test-only `for:` of the band alerts (production: 15m and 30m)
TEST_FOR = {"MarketingAcvUnderBand": "2s", "MarketingAcvModerateBand": "4s"}


def _replace(text: str, old: str, new: str, count: int) -> str:
    found = text.count(old)
    if found != count:
        raise AssertionError(f"expected {old!r} {count} time(s) in the deploy file, found {found}")
    return text.replace(old, new)


def prometheus_config(worker_port: int, prometheus_port: int, alertmanager_port: int | None) -> str:
    text = (DEPLOY / "prometheus" / "prometheus.yml").read_text()
    text = _replace(text, "scrape_interval: 15s", "scrape_interval: 1s", 1)
    text = _replace(text, "evaluation_interval: 15s", "evaluation_interval: 1s", 1)
    text = _replace(text, '"revpulse:6066"', f'"127.0.0.1:{worker_port}"', 1)
    text = _replace(text, '"localhost:9090"', f'"127.0.0.1:{prometheus_port}"', 1)
    alertmanager = f'"127.0.0.1:{alertmanager_port or free_port()}"'
    return _replace(text, '"alertmanager:9093"', alertmanager, 2)


def alert_rules_for_test() -> str:
    """alert_rules.yml with the band alerts' ``for:`` shortened (TEST ONLY, see above)."""
    text = (DEPLOY / "prometheus" / "alert_rules.yml").read_text()
    blocks = re.split(r"(?m)^(?=\s*- alert: )", text)
    for index, block in enumerate(blocks):
        name = re.match(r"\s*- alert: (\S+)", block)
        if name and name.group(1) in TEST_FOR:
            block, count = re.subn(
                r"(?m)^(\s+for: )\S+$", rf"\g<1>{TEST_FOR[name.group(1)]}", block
            )
            assert count == 1, f"no `for:` in {name.group(1)}"
            blocks[index] = block
    rewritten = "".join(blocks)
    assert rewritten.count("for: 2s") == 1 and rewritten.count("for: 4s") == 1
    return rewritten


def alertmanager_config(webhook_url: str) -> str:
    text = (DEPLOY / "alertmanager" / "alertmanager.yml").read_text()
    text = _replace(text, '"http://127.0.0.1:9099/alerts"', json.dumps(webhook_url), 1)
    band_route = text.index("- receiver: marketing-acv-band-webhook")
    head, route = text[:band_route], text[band_route:]
    return head + _replace(route, "group_wait: 30s", "group_wait: 1s", 1)


# -- servers ---------------------------------------------------------------------------


def http_json(url: str, timeout_seconds: float = 5) -> Any:
    with urllib.request.urlopen(url, timeout=timeout_seconds) as response:
        return json.loads(response.read())


def _wait_ready(child: ChildProcess, url: str, what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            break
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(url, timeout=2) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.2)
    log = child.log_path.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"{what} not ready at {url}:\n{log}")


@dataclass
class Prometheus:
    port: int

    def url(self, path: str, **params: str) -> str:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        return f"http://127.0.0.1:{self.port}{path}{query}"

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The result of an instant query (a vector; a scalar as one sample)."""
        body = http_json(self.url("/api/v1/query", query=expr))
        assert body["status"] == "success", body
        data = body["data"]
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = http_json(self.url("/api/v1/alerts"))["data"]["alerts"]
        return alerts


@contextlib.contextmanager
def run_prometheus(
    work_dir: Path, worker_port: int, alertmanager_port: int | None
) -> Iterator[Prometheus]:
    if shutil.which(PROMETHEUS_BIN) is None:
        pytest.skip("prometheus not installed (apt-get install prometheus)")
    port = free_port()
    config_dir = work_dir / "prometheus"
    config_dir.mkdir(parents=True)
    shutil.copy(DEPLOY / "prometheus" / "recording_rules.yml", config_dir)
    (config_dir / "alert_rules.yml").write_text(alert_rules_for_test())
    config = config_dir / "prometheus.yml"
    config.write_text(prometheus_config(worker_port, port, alertmanager_port))
    check = subprocess.run(
        ["promtool", "check", "config", str(config)], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    argv = [
        PROMETHEUS_BIN,
        f"--config.file={config}",
        f"--storage.tsdb.path={work_dir / 'prometheus-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--rules.alert.resend-delay=1s",
    ]
    child = spawn("prometheus", argv, work_dir)
    try:
        _wait_ready(child, f"http://127.0.0.1:{port}/-/ready", "prometheus")
        yield Prometheus(port)
    finally:
        child.stop()


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 that records every POSTed JSON body."""

    port: int
    bodies: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/alerts"

    def delivered(self, alertname: str, status: str = "firing") -> list[dict[str, Any]]:
        return [
            alert
            for body in list(self.bodies)
            for alert in body.get("alerts", [])
            if alert["labels"].get("alertname") == alertname and alert["status"] == status
        ]


@contextlib.contextmanager
def run_receiver() -> Iterator[Receiver]:
    receiver = Receiver(0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            receiver.bodies.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextlib.contextmanager
def run_alertmanager(work_dir: Path, webhook_url: str) -> Iterator[int]:
    if shutil.which(ALERTMANAGER_BIN) is None:
        pytest.skip("alertmanager not installed (apt-get install prometheus-alertmanager)")
    port = free_port()
    config = work_dir / "alertmanager.yml"
    config.write_text(alertmanager_config(webhook_url))
    argv = [
        ALERTMANAGER_BIN,
        f"--config.file={config}",
        f"--storage.path={work_dir / 'alertmanager-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    child = spawn("alertmanager", argv, work_dir)
    try:
        wait_for_port(port, 20, child.process)
        _wait_ready(child, f"http://127.0.0.1:{port}/-/ready", "alertmanager")
        yield port
    finally:
        child.stop()


# -- events ------------------------------------------------------------------------------


def ev(event_id: str, event_type: str, at: str, **data: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": event_type,
        "occurred_at": at,
        "source": "test",
        "data": data,
    }


# Phase 0, sent and applied first: a customer signed in January 2025 (3 years), so an
# account was active 365 days before the watermark, which churn rate and LTV need.
HISTORY = [
    ev("m0", "contract.signed", "2025-01-10T12:00:00Z", contract_id="C0", account_id="A0",
       origin="sales", channel="outbound", start_date="2025-01-10", term_months=36,
       recurring_value="360000"),
]  # fmt: skip

# Phase 1, March 2026 (within 7 days of the watermark 2026-03-20T12:00Z, so every
# window, 7d to 365d, month and quarter, has data): leads of every origin, conversions,
# new, expansion and churn, spend on the channels that booked. ACV from marketing leads
# (30d) = (1,200,000 + 1,000,000) / 2 = 1,100,000: the strong band.
FUNNEL = [
    ev("m1", "lead.created", "2026-03-14T09:00:00Z", lead_id="L1", channel="paid_search",
       origin="marketing", estimated_value="50000"),
    ev("m2", "lead.created", "2026-03-14T10:00:00Z", lead_id="L2", channel="organic",
       origin="marketing", estimated_value="20000"),
    ev("m3", "lead.created", "2026-03-14T11:00:00Z", lead_id="L3", channel="outbound",
       origin="sales", estimated_value="10000"),
    ev("m4", "lead.created", "2026-03-14T12:00:00Z", lead_id="L4", channel="referral",
       origin="partner"),
    ev("m5", "lead.converted", "2026-03-15T09:00:00Z", lead_id="L1", account_id="A1"),
    ev("m6", "lead.converted", "2026-03-15T10:00:00Z", lead_id="L2", account_id="A2"),
    ev("m7", "lead.converted", "2026-03-15T11:00:00Z", lead_id="L3", account_id="A3"),
    ev("m8", "contract.signed", "2026-03-16T12:00:00Z", contract_id="C1", account_id="A1",
       lead_id="L1", start_date="2026-03-16", term_months=12, recurring_value="1200000",
       one_time_fees="15000"),
    ev("m9", "contract.signed", "2026-03-16T13:00:00Z", contract_id="C2", account_id="A2",
       lead_id="L2", start_date="2026-03-16", term_months=24, recurring_value="2000000"),
    ev("m10", "contract.signed", "2026-03-17T12:00:00Z", contract_id="C3", account_id="A3",
       lead_id="L3", start_date="2026-03-17", term_months=12, recurring_value="200000"),
    ev("m11", "contract.signed", "2026-03-18T12:00:00Z", contract_id="C4", account_id="A1",
       kind="expansion", origin="marketing", channel="paid_search", start_date="2026-03-18",
       term_months=12, recurring_value="120000"),
    ev("m12", "customer.churned", "2026-03-18T15:00:00Z", account_id="A0"),
    ev("m13", "spend.recorded", "2026-03-15T00:00:00Z", channel="paid_search",
       amount="30000", currency="USD"),
    ev("m14", "spend.recorded", "2026-03-15T00:00:00Z", channel="organic", amount="5000",
       currency="USD"),
    ev("m15", "spend.recorded", "2026-03-15T00:00:00Z", channel="outbound", amount="1000",
       currency="USD"),
    ev("m16", "lead.created", "2026-03-20T12:00:00Z", lead_id="L5", channel="events",
       origin="marketing"),
    ev("m1", "lead.created", "2026-03-14T09:00:00Z", lead_id="L1", channel="paid_search",
       origin="marketing", estimated_value="50000"),  # a duplicate
]  # fmt: skip
WATERMARK = "2026-03-20T12:00:00+00:00"

# Phase 2, while Redis refuses writes (a sink error): one late event (19 days behind
# the watermark, beyond the 7-day lateness) and one new lead.
LATE_AND_NEW = [
    ev("m17", "lead.created", "2026-03-01T12:00:00Z", lead_id="L6", channel="organic",
       origin="marketing"),
    ev("m18", "lead.created", "2026-03-20T13:00:00Z", lead_id="L7", channel="organic",
       origin="marketing"),
]  # fmt: skip
WATERMARK_AFTER_SINK_ERROR = "2026-03-20T13:00:00+00:00"

# Phase 3: four small new marketing contracts. ACV from marketing leads (30d) =
# (1,200,000 + 1,000,000 + 4 x 20,000) / 6 = 380,000: the under band.
UNDER = [
    ev(f"m{19 + i}", "contract.signed", f"2026-03-21T1{i}:00:00Z", contract_id=f"C{5 + i}",
       account_id=f"A{5 + i}", origin="marketing", channel="paid_search",
       start_date="2026-03-21", term_months=12, recurring_value="20000")
    for i in range(4)
]  # fmt: skip
UNDER_VALUE = 380_000


async def _send(settings: Settings, events: list[dict[str, Any]], raw: list[bytes]) -> None:
    async with event_producer(settings) as producer:
        for event in events:
            await producer.send(parse_event(event))
        for value in raw:
            await producer.send_raw(value, key=b"bad")
        await producer.flush()


def send(settings: Settings, events: list[dict[str, Any]], raw: Sequence[bytes] = ()) -> None:
    asyncio.run(_send(settings, events, list(raw)))


# -- the stack ---------------------------------------------------------------------------


@dataclass
class Monitored:
    worker: WorkerHandle
    redis: redis.Redis
    prometheus: Prometheus
    receiver: Receiver
    alertmanager_port: int
    under_sent: bool = False

    def meta(self) -> dict[bytes, bytes]:
        meta: dict[bytes, bytes] = self.redis.hgetall(f"{self.worker.settings.redis_prefix}:meta")
        return meta

    def wait_watermark(self, watermark: str) -> None:
        wait_for(
            lambda: self.meta().get(b"watermark") == watermark.encode(),
            what=f"watermark {watermark} in Redis",
        )

    def drive_under_band(self) -> None:
        """Send the events that take ACV from marketing leads under its band (once)."""
        if self.under_sent:
            return
        self.under_sent = True
        send(self.worker.settings, UNDER)
        wait_for(lambda: self.meta().get(b"band") == b"under", what="band under in Redis")


def _ops_value(worker: WorkerHandle, line_start: str) -> float | None:
    for line in worker.metrics_text().splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return None


@contextlib.contextmanager
def monitored_stack(kafka: str, work_dir: Path) -> Iterator[Monitored]:
    """Worker (own Redis), webhook receiver, Alertmanager and Prometheus, with phases 0-2."""
    with contextlib.ExitStack() as stack:
        redis_port = free_port()
        redis_child = start_redis(redis_port, work_dir / "redis")
        stack.callback(redis_child.stop)
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        client = redis.Redis.from_url(redis_url)
        stack.callback(client.close)
        # 7 days of allowed lateness (the default), so LATE_AND_NEW has a late event
        # one partition: the lateness mark is the watermark of the only source
        settings = isolated_settings(kafka, redis_url, lateness_seconds=7 * 86400, partitions=1)
        worker = start_worker(settings, work_dir, "monitored-worker")
        stack.callback(worker.stop)
        receiver = stack.enter_context(run_receiver())
        am_port = stack.enter_context(run_alertmanager(work_dir, receiver.url))
        prometheus = stack.enter_context(run_prometheus(work_dir, worker.web_port, am_port))
        monitored = Monitored(worker, client, prometheus, receiver, am_port)
        settings = worker.settings

        send(settings, HISTORY)
        monitored.wait_watermark("2025-01-10T12:00:00+00:00")
        send(settings, FUNNEL, [b"{not json"])
        monitored.wait_watermark(WATERMARK)
        wait_for(lambda: monitored.meta().get(b"band") == b"strong", what="band strong")

        # A real sink error: Redis refuses writes while it lacks a replica.
        client.config_set("min-replicas-to-write", 1)
        try:
            send(settings, LATE_AND_NEW)
            wait_for(
                lambda: _ops_value(worker, 'revpulse_sink_errors_total{sink="redis"}'),
                what="a Redis sink error counted",
            )
        finally:
            client.config_set("min-replicas-to-write", 0)
        monitored.wait_watermark(WATERMARK_AFTER_SINK_ERROR)
        yield monitored


@pytest.fixture(scope="session")
def monitored(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Monitored]:
    """One monitored stack for the session (imported by conftest.py)."""
    with monitored_stack(kafka, tmp_path_factory.mktemp("monitored")) as stack:
        yield stack
