"""The metric catalogue of docs/metrics.md, generated from the code so the two cannot drift.

``python -m sinks.catalogue_doc`` prints it: paste the output between the
``<!-- catalogue:start`` and ``<!-- catalogue:end -->`` markers of docs/metrics.md.
tests/unit/test_docs.py fails while the page holds anything else.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from models.catalogue import CATALOGUE, QUOTIENT_KINDS
from sinks.prometheus_sink import gauge_name
from sinks.redis_keys import RedisKeys

UNITS = {
    "count": "count",
    "money": "reporting currency",
    "mean": "reporting currency",
    "ratio": "ratio 0-1",
    "months": "months",
    "multiple": "times (x)",
}
EXTRA_GAUGES = (
    ("revpulse_marketing_acv_band", "band", "1 for the current band (strong, moderate, under)"),
    (
        "revpulse_metrics_clock_timestamp_seconds",
        "seconds",
        "The metrics clock of the last publish",
    ),
    ("revpulse_watermark_timestamp_seconds", "seconds", "Largest occurred_at applied so far"),
)


def _ops_rows() -> list[tuple[str, str, str]]:
    from sinks.ops_metrics import build_ops_metrics

    registry = CollectorRegistry()
    build_ops_metrics(registry)
    rows = []
    for family in registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        labels = sorted({k for s in family.samples for k in s.labels if k != "le"})
        kind = family.type + (f" by {', '.join(labels)}" if labels else "")
        rows.append((name, kind, family.documentation))
    return rows


def catalogue_markdown() -> str:
    lines = [
        "| Prometheus series | unit | labels | meaning |",
        "|---|---|---|---|",
    ]
    for metric in CATALOGUE:
        name = gauge_name(metric)
        labels = "window, origin, channel"
        lines.append(f"| `{name}` | {UNITS[metric.kind]} | {labels} | {metric.help} |")
        if metric.kind in QUOTIENT_KINDS:
            lines.append(
                f"| `{name}_numerator`, `{name}_denominator` | parts | {labels} "
                f"| The two sums `{name}` is the quotient of |"
            )
    for name, unit, meaning in EXTRA_GAUGES:
        labels = "band" if unit == "band" else ""
        lines.append(f"| `{name}` | {unit} | {labels} | {meaning} |")
    lines += ["", "| operational series | type | meaning |", "|---|---|---|"]
    for name, kind, meaning in _ops_rows():
        lines.append(f"| `{name}` | {kind} | {meaning} |")
    keys = RedisKeys("revpulse")
    lines += [
        "",
        "| Redis key | type | content |",
        "|---|---|---|",
        f"| `{keys.current}` | hash | series id `metric\\|window\\|origin\\|channel` -> JSON point "
        "(`metric, window, origin, channel, value, as_of`, and `numerator, denominator` "
        "for a quotient); an undefined value is absent |",
        f"| `{keys.history('<series id>')}` | list | newest first, the JSON point each time "
        "it changed, capped at REVPULSE_HISTORY_LENGTH |",
        f"| `{keys.meta}` | hash | `clock`, `watermark`, `published_at` (epoch s), `band` |",
        f"| `{keys.alerts}` | stream | one entry per band change: previous, current, value, "
        "window, clock |",
        f"| `{keys.updates_channel}` | pub/sub | JSON `{{clock, changed: [series id], "
        "removed: [series id]}` after each publish that changed something |",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(catalogue_markdown())
