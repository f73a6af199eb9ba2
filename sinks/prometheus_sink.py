"""Prometheus sink: the latest publication as gauges, read at scrape time.

Every metric of the catalogue is one gauge ``revpulse_<name>`` (``_ratio`` for a
0-1 ratio) with the labels ``window``, ``origin`` and ``channel``. Means and ratios
also export ``..._numerator`` and ``..._denominator`` so that PromQL can aggregate
them exactly. An undefined value (zero denominator) has no sample.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from models.band import BAND_NAMES
from models.catalogue import BY_NAME, CATALOGUE, QUOTIENT_KINDS, MetricDef
from models.publication import Publication

LABELS = ("window", "origin", "channel")


def gauge_name(metric: MetricDef) -> str:
    suffix = "_ratio" if metric.kind == "ratio" else ""
    return f"revpulse_{metric.name}{suffix}"


def _help(metric: MetricDef, currency: str) -> str:
    unit = f" ({currency})" if metric.kind in ("money", "mean") else ""
    return metric.help + unit


class PublicationCollector(Collector):
    """Yields the gauges of the latest publication; nothing before the first one."""

    def __init__(self, reporting_currency: str) -> None:
        self._currency = reporting_currency
        self._latest: Publication | None = None

    def update(self, publication: Publication | None) -> None:
        self._latest = publication

    def collect(self) -> Iterator[Metric]:
        publication = self._latest
        if publication is None:
            return
        families: dict[str, tuple[GaugeMetricFamily, ...]] = {}
        for metric in CATALOGUE:
            name = gauge_name(metric)
            value = GaugeMetricFamily(name, _help(metric, self._currency), labels=LABELS)
            parts: tuple[GaugeMetricFamily, ...] = (value,)
            if metric.kind in QUOTIENT_KINDS:
                parts += (
                    GaugeMetricFamily(f"{name}_numerator", f"Numerator of {name}", labels=LABELS),
                    GaugeMetricFamily(
                        f"{name}_denominator", f"Denominator of {name}", labels=LABELS
                    ),
                )
            families[metric.name] = parts
        for point in publication.points:
            labels = [point.window, point.origin, point.channel]
            parts = families[point.metric]
            if point.value is not None:
                parts[0].add_metric(labels, float(point.value))
            if len(parts) == 3 and point.denominator is not None:
                assert point.numerator is not None
                parts[1].add_metric(labels, float(point.numerator))
                parts[2].add_metric(labels, float(point.denominator))
        for parts in families.values():
            yield from parts
        band = GaugeMetricFamily(
            "revpulse_marketing_acv_band",
            f"1 for the current band of ACV from marketing leads ({', '.join(BAND_NAMES)})",
            labels=["band"],
        )
        for name in BAND_NAMES:
            if publication.band is not None:
                band.add_metric([name], 1.0 if publication.band == name else 0.0)
        yield band
        clock = GaugeMetricFamily(
            "revpulse_metrics_clock_timestamp_seconds", "The metrics clock of the latest publish"
        )
        clock.add_metric([], publication.clock.timestamp())
        yield clock
        if publication.watermark is not None:
            mark = GaugeMetricFamily(
                "revpulse_watermark_timestamp_seconds", "Largest occurred_at applied so far"
            )
            mark.add_metric([], publication.watermark.timestamp())
            yield mark


class PrometheusSink:
    """Feeds a :class:`PublicationCollector` registered on the given registry."""

    name = "prometheus"

    def __init__(self, registry: CollectorRegistry, reporting_currency: str) -> None:
        self._collector = PublicationCollector(reporting_currency)
        registry.register(self._collector)
        self._registry = registry

    async def start(self) -> None:
        return None

    async def publish(self, publication: Publication) -> None:
        self._collector.update(publication)

    async def check(self) -> None:
        return None  # served from this process: nothing to lose

    async def withdraw(self) -> None:
        """Another worker publishes now: export no business gauges from here."""
        self._collector.update(None)

    async def close(self) -> None:
        self._registry.unregister(self._collector)


__all__ = ["BY_NAME", "PrometheusSink", "PublicationCollector", "gauge_name"]
