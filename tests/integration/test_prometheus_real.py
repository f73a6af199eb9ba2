"""A real Prometheus (Debian package) scraping a running worker: every recording rule and
every Grafana panel query returns data, and the band alert fires.

The stack (worker, Prometheus, Alertmanager) is the session fixture ``monitored``
(tests/integration/monitoring.py, which explains how the deploy/ configs are adapted;
in particular the band alerts' ``for:`` is shortened to seconds in a test copy of the
rules).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.integration.monitoring import DEPLOY, UNDER_VALUE, Monitored, ev, send
from tests.integration.workers import wait_for

pytestmark = pytest.mark.timeout(240)

BOARD = DEPLOY / "grafana" / "dashboards" / "revpulse.json"
# Grafana's built-in interval variables, as Grafana would expand them at a 1 s scrape
REFRESH = ev(
    "m-refresh",
    "spend.recorded",
    "2026-03-20T12:30:00Z",
    channel="paid_search",
    amount="0",
    currency="USD",
)
GRAFANA_BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}


def recording_rules() -> list[str]:
    text = (DEPLOY / "prometheus" / "recording_rules.yml").read_text()
    return re.findall(r"(?m)^\s*- record:\s*(\S+)\s*$", text)


def board_queries(path: Path = BOARD) -> list[tuple[str, str]]:
    """(panel title, query) for every panel target, once per value of each variable."""
    board = json.loads(path.read_text())
    variables: dict[str, list[str]] = {
        variable["name"]: [option["value"] for option in variable["options"]]
        for variable in board.get("templating", {}).get("list", [])
    }
    found: list[tuple[str, str]] = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            expr: str = target["expr"]
            for name, value in GRAFANA_BUILTINS.items():
                expr = expr.replace(f"${{{name}}}", value).replace(f"${name}", value)
            used = [name for name in variables if f"${name}" in expr or f"${{{name}}}" in expr]
            assert len(used) <= 1, f"{panel['title']}: several variables, extend this test"
            values = variables[used[0]] if used else [""]
            for value in values:
                query = expr
                if used:
                    query = query.replace(f"${{{used[0]}}}", value).replace(f"${used[0]}", value)
                assert "$" not in query, f"unsubstituted variable in {panel['title']}: {query}"
                found.append((panel["title"], query))
    return found


def test_board_and_rules_are_read_completely() -> None:
    rules = recording_rules()
    queries = board_queries()
    assert len(rules) >= 30 and "revpulse:marketing_acv:30d" in rules
    # each panel with a $window query is checked for all six windows
    assert {q for _t, q in queries if 'window="quarter"' in q}
    assert len(queries) > 100


def _empty(monitored: Monitored, queries: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(title, query) for title, query in queries if not monitored.prometheus.query(query)]


def test_every_recording_rule_and_panel_query_returns_data(monitored: Monitored) -> None:
    prometheus = monitored.prometheus
    wait_for(
        lambda: prometheus.query('up{job="revpulse"} == 1'), what="Prometheus scraping the worker"
    )
    # A spend of 0 changes no figure but is applied and published: a fresh latency
    # observation and event timestamp, in case other tests ran since the stack started
    # (the rate()s look back 5 minutes).
    send(monitored.worker.settings, [REFRESH])
    checks = [("recording rule", rule) for rule in recording_rules()] + board_queries()
    missing: list[tuple[str, str]] = []

    def all_answer() -> bool:
        nonlocal missing
        missing = _empty(monitored, checks)
        return not missing

    try:
        wait_for(all_answer, timeout_seconds=45, what="data for every rule and panel query")
    except AssertionError:
        pytest.fail("no data for:\n" + "\n".join(f"  {t}: {q}" for t, q in missing))

    # spot checks of exact values through the rules (30d window, all segments); the
    # Alertmanager test may have run first and sent the events of the under band
    under = monitored.under_sent
    expected = {
        "revpulse:marketing_acv:30d": UNDER_VALUE if under else 1_100_000,
        'revpulse:conversion_rate{window="30d", origin="all", channel="all"}': 0.5,
        # spend 36,000 / new customers: 3, and 4 more with the under-band contracts
        'revpulse:cac{window="30d", origin="all", channel="all"}': 36_000 / (7 if under else 3),
        'revpulse:customer_churn_rate{window="point", origin="all", channel="all"}': 1,
    }
    for expr, value in expected.items():
        (sample,) = prometheus.query(expr)
        assert float(sample["value"][1]) == pytest.approx(value), expr
    (band,) = prometheus.query("max by (band) (revpulse_marketing_acv_band) == 1")
    assert band["metric"]["band"] == ("under" if under else "strong")
    assert prometheus.query('sum(revpulse_sink_errors_total{sink="redis"}) > 0')
    assert prometheus.query("sum(revpulse_events_late_total) > 0")
    wait_for(
        lambda: prometheus.query("revpulse:event_to_publish_latency_seconds:p95_5m >= 0"),
        what="a p95 latency that is a number",
    )


def _alert(monitored: Monitored, name: str) -> dict[str, Any] | None:
    return next(
        (a for a in monitored.prometheus.alerts() if a["labels"]["alertname"] == name), None
    )


def test_marketing_acv_under_band_alert_fires(monitored: Monitored) -> None:
    prometheus = monitored.prometheus
    monitored.drive_under_band()
    wait_for(
        lambda: prometheus.query(f"revpulse:marketing_acv:30d == {UNDER_VALUE}"),
        what=f"revpulse:marketing_acv:30d at {UNDER_VALUE}",
    )
    firing = wait_for(
        lambda: (a := _alert(monitored, "MarketingAcvUnderBand")) and a["state"] == "firing" and a,
        timeout_seconds=30,
        what="MarketingAcvUnderBand firing",
    )
    assert firing["labels"]["severity"] == "critical"
    assert firing["labels"]["band"] == "under"
    assert float(firing["value"]) == UNDER_VALUE
    assert "380k" in firing["annotations"]["description"]
    assert "500k" in firing["annotations"]["description"]
    # the in-stream band gauge agrees
    (band,) = prometheus.query("max by (band) (revpulse_marketing_acv_band) == 1")
    assert band["metric"]["band"] == "under"
