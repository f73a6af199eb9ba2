"""The line revpulse dev prints: headline figures for all segments, from published points."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from models.series import MetricPoint
from streams.devstack.status import status_line

TODAY = dt.date(2026, 11, 25)


def point(metric: str, window: str, value: str | None, origin: str = "all") -> MetricPoint:
    amount = None if value is None else Decimal(value)
    return MetricPoint(metric, window, origin, "all", amount, TODAY)


def test_headline_figures_for_all_segments_in_order() -> None:
    points = [
        point("arr", "point", "547407083"),
        point("new_acv", "30d", "1045405.925781"),
        point("new_acv", "30d", "5", origin="marketing"),  # a segment: not on the line
        point("new_acv", "7d", "7"),  # another window: not on the line
        point("conversion_rate", "30d", "0.300117"),
        point("cac", "30d", "35522.375156"),
        point("marketing_acv", "30d", None),
    ]
    line = status_line(points, {"band": "strong"}, "USD")
    assert line == (
        "new ACV 30d 1,045,405.93 | marketing ACV 30d undefined | conversion 30d 30.0 % | "
        "CAC 30d 35,522.38 | ARR 547,407,083 (USD) | band strong"
    )


def test_before_the_first_publish() -> None:
    assert status_line([], {}, "USD") == "no metrics published yet"


def test_the_export_line_names_the_broker_and_redis_and_a_prefix_only_when_set() -> None:
    from streams.devstack.session import export_line
    from streams.settings import Settings

    line = export_line(
        Settings(), "127.0.0.1:9092", "redis://127.0.0.1:6380/0", "http://127.0.0.1:7001"
    )
    assert line == (
        "export REVPULSE_KAFKA_BOOTSTRAP=127.0.0.1:9092 REVPULSE_REDIS_URL=redis://127.0.0.1:6380/0"
        " REVPULSE_INGEST_URL=http://127.0.0.1:7001/v1/events"
    )
    prefixed = export_line(Settings(redis_prefix="mine"), "k:1", "redis://r:2/0", "http://w:3")
    assert prefixed.endswith(" REVPULSE_REDIS_PREFIX=mine")


def test_the_exported_ingest_url_is_where_the_http_clients_post(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pasted into another shell, --via http reaches the dev worker's web port."""
    import shlex

    from streams.devstack.session import export_line
    from streams.ingest.client import ingest_url
    from streams.settings import Settings

    line = export_line(Settings(), "k:1", "redis://r:2/0", "http://127.0.0.1:7001")
    for word in shlex.split(line.removeprefix("export ")):
        name, _eq, value = word.partition("=")
        monkeypatch.setenv(name, value)
    client = Settings()
    assert ingest_url(client) == "http://127.0.0.1:7001/v1/events"
    assert client.redis_url.get_secret_value() == "redis://r:2/0"


def test_the_status_line_names_what_is_down(tmp_path: Path) -> None:
    import argparse
    import time

    from streams.devstack.session import DevStack
    from streams.settings import Settings

    stack = DevStack(
        Settings(), argparse.Namespace(rate=1.0, demo=True), tmp_path, (1, 2, 3), {}
    )  # nothing starts before start()
    assert stack.down() == []
    stack.worker.backoff.next_delay_seconds(0)
    stack.worker.backoff.next_delay_seconds(0)
    stack.worker.restart_at = time.monotonic() + 2.4
    stack.simulator.held = True
    assert stack.down() == ["worker down, restart 2 in 2 s", "simulator waits for the broker"]
