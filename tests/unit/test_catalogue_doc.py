"""The catalogue restates no help text: each one is the text its series is served with."""

from __future__ import annotations

import asyncio
import datetime as dt

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from models.band import BAND_NAMES
from models.publication import Publication
from sinks.catalogue_doc import catalogue_markdown
from sinks.ops_metrics import build_ops_metrics
from sinks.prometheus_sink import PrometheusSink


def served_help() -> dict[str, str]:
    """Name -> help of every family a worker's registry serves from the sinks' floor."""
    registry = CollectorRegistry()
    sink = PrometheusSink(registry, "USD")
    build_ops_metrics(registry)
    clock = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    asyncio.run(sink.publish(Publication((), clock, clock, band=BAND_NAMES[-1])))
    text = generate_latest(registry).decode()
    return {family.name: family.documentation for family in text_string_to_metric_families(text)}


def catalogue_rows() -> dict[str, str]:
    """Name -> meaning of every one-series row of the generated catalogue."""
    rows = {}
    for line in catalogue_markdown().splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if cells and cells[0].startswith("`revpulse_") and "," not in cells[0]:
            rows[cells[0].strip("`")] = cells[-1]
    return rows


def test_every_row_carries_the_help_its_series_is_served_with() -> None:
    served = served_help()
    rows = catalogue_rows()
    assert len(rows) > 40
    for name, meaning in rows.items():
        family = name.removesuffix("_total")
        assert family in served, f"{name} is in the catalogue but not served"
        # money and mean gauges carry the reporting currency after the catalogue's text
        assert served[family] in (meaning, f"{meaning} (USD)"), name
    for name in (
        "revpulse_marketing_acv_band",
        "revpulse_metrics_clock_timestamp_seconds",
        "revpulse_watermark_timestamp_seconds",
    ):
        assert rows[name] == served[name]
