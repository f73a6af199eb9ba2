"""The metric catalogue of docs/metrics.md, generated from the code so the two cannot drift.

Every help text is read from where its series is defined (the catalogue, the Prometheus
sink's collector, the operational metrics), never restated here.
``python -m sinks.catalogue_doc`` prints it: paste the output between the
``<!-- catalogue:start`` and ``<!-- catalogue:end -->`` markers of docs/metrics.md.
tests/unit/test_docs.py fails while the page holds anything else.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric

from models.band import BAND_NAMES
from models.catalogue import CATALOGUE, QUOTIENT_KINDS
from models.publication import Publication
from sinks.ops_metrics import build_ops_metrics
from sinks.prometheus_sink import PrometheusSink, gauge_name
from sinks.redis_keys import RedisKeys, StatePartKeys

UNITS = {
    "count": "count",
    "money": "reporting currency",
    "mean": "reporting currency",
    "ratio": "ratio 0-1",
    "months": "months",
    "multiple": "times (x)",
}


def _kind(family: Metric) -> str:
    labels = sorted({k for s in family.samples for k in s.labels if k != "le"})
    return family.type + (f" by {', '.join(labels)}" if labels else "")


def _publication_rows() -> list[tuple[str, str, str, str]]:
    """(name, unit, labels, help) of the Prometheus sink's series beyond the catalogue's gauges.

    Read from the sink's own collector fed one publication that has a band and a watermark,
    so every series it can serve is collected.
    """
    registry = CollectorRegistry()
    sink = PrometheusSink(registry, "USD")
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    asyncio.run(sink.publish(Publication((), epoch, epoch, band=BAND_NAMES[0])))
    catalogued = set()
    for metric in CATALOGUE:
        name = gauge_name(metric)
        catalogued |= {name, f"{name}_numerator", f"{name}_denominator"}
    rows = []
    for family in registry.collect():
        if family.name in catalogued:
            continue
        labels = ", ".join(sorted({k for s in family.samples for k in s.labels}))
        unit = "seconds" if family.name.endswith("_seconds") else "0 or 1"
        rows.append((family.name, unit, labels, family.documentation))
    return rows


def _ops_rows() -> list[tuple[str, str, str]]:
    """(name, type, help) of the operational series, read from a registry they are built on."""
    registry = CollectorRegistry()
    build_ops_metrics(registry)
    rows = []
    for family in registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        rows.append((name, _kind(family), family.documentation))
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
    for name, unit, labels, meaning in _publication_rows():
        lines.append(f"| `{name}` | {unit} | {labels} | {meaning} |")
    lines += ["", "| operational series | type | meaning |", "|---|---|---|"]
    for name, kind, meaning in _ops_rows():
        lines.append(f"| `{name}` | {kind} | {meaning} |")
    keys = RedisKeys("revpulse")
    part = StatePartKeys(f"{keys.prefix}:state:<part>")
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
        f"| `{keys.state_parts}` | set | the state parts that have a copy for `--as-of`: "
        "`0` (the ledger's), and with REVPULSE_ENTITY_STAGE `entities-<n>` (a by-entity "
        "partition's contracts and churns) |",
        f"| `{part.buckets}` | hash | `metric\\|dimension\\|value\\|YYYY-MM-DD` -> decimal "
        "amount of that day in this part, within the retention |",
        f"| `{part.contracts}` | hash | contract id -> JSON booked contract (ARR in the "
        "reporting currency), while an answered `--as-of` day can reach it |",
        f"| `{part.churns}` | hash | event id -> JSON churn (account, contract, effective "
        "date); before the first reached day, one per account and per contract |",
        f"| `{part.contract_ends}`, `{part.churn_days}` | sorted set | contract ids by the "
        "day their term ends, churn event ids by their date: what to drop or fold next |",
        f"| `{part.churn_kept}` | hash | `account:<id>` or `contract:<id>` -> "
        "`YYYY-MM-DD\\|event id` of the churn kept for it from before the first reached day |",
        f"| `{part.reach}` | hash | `first_as_of`, `widest_window_days`, `clock_day`, "
        "`retention_days`: the first day and widest window the part's copy answers exactly; "
        "absent for an unbounded copy |",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(catalogue_markdown())
