"""The benchmark's figures: a table for people, JSON for machines."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from typing import Any

BASELINE = "raw_consume_events_per_second"
# (figure, short name) of the ratio lines: "pipeline / raw consume = 0.012x"
RATIO_NAMES = (
    ("pipeline_events_per_second", "pipeline"),
    ("intake_events_per_second", "intake"),
    ("ledger_apply_events_per_second", "Ledger.apply"),
    ("parse_events_per_second", "parse_event_bytes"),
)
# (figure, label): the order and wording of the table; the names are also the JSON keys
ROWS = (
    ("raw_consume_events_per_second", "raw aiokafka consume + json.loads (baseline)"),
    ("preload_events_per_second", "aiokafka produce, acks=all (pre-load)"),
    ("parse_events_per_second", "domain: parse_event_bytes (decode + validate)"),
    ("ledger_apply_events_per_second", "domain: Ledger.apply (parsed events)"),
    ("compute_points_ms", "domain: compute_points, ledger of N events"),
    ("intake_events_per_second", "pipeline: intake agent read all N"),
    ("pipeline_events_per_second", "pipeline: end-to-end, ledger holds all N"),
    ("worker_start_seconds", "pipeline: worker start until /readyz"),
    ("worker_first_event_seconds", "pipeline: /readyz until the intake consumes"),
    ("latency_p50_seconds", "event-to-publish latency p50"),
    ("latency_p95_seconds", "event-to-publish latency p95"),
    ("latency_p99_seconds", "event-to-publish latency p99"),
    ("latency_mean_seconds", "event-to-publish latency mean"),
    ("recovery_ready_seconds", "crash recovery: new worker start until /readyz"),
    ("recovery_rebuilt_seconds", "crash recovery: until the ledger holds all again"),
)


def machine_info() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(
                (
                    line.split(":", 1)[1].strip()
                    for line in cpuinfo
                    if line.startswith("model name")
                ),
                "",
            )
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu": model or platform.processor(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
    }


@dataclass
class Report:
    command: str
    events: int
    machine: dict[str, Any]
    figures: dict[str, tuple[float, str]] = field(default_factory=dict)
    counters: dict[str, dict[str, float]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def set(self, name: str, value: float, unit: str) -> None:
        self.figures[name] = (value, unit)

    def ratios(self) -> dict[str, float]:
        """Each events/s figure divided by the raw-consume baseline."""
        base = self.figures.get(BASELINE)
        if base is None or base[0] <= 0:
            return {}
        return {
            name: value / base[0]
            for name, (value, unit) in self.figures.items()
            if unit == "events/s" and name != BASELINE
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "events": self.events,
            "machine": self.machine,
            "figures": {name: {"value": v, "unit": u} for name, (v, u) in self.figures.items()},
            "ratios_to_raw_consume": self.ratios(),
            "counters": self.counters,
            "info": self.info,
        }


def _value(value: float, unit: str) -> str:
    if unit == "events/s":
        return f"{value:,.0f} events/s"
    if unit == "ms":
        return f"{value:,.1f} ms"
    if unit == "s":
        return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
    return f"{value:,.0f} {unit}"


def render_table(report: Report) -> str:
    machine, info = report.machine, report.info
    settings = info.get("worker_settings", {})
    lines = [
        "revpulse throughput benchmark",
        f"  command   {report.command}",
        f"  machine   {machine['cores']} cores ({machine['usable_cores']} usable), "
        f"{machine['cpu']}, Python {machine['python']}",
        f"  events    N={report.events:,} (seed {info.get('seed')}, occurred_at over "
        f"{info.get('span_days')} days, {info.get('mean_event_bytes')} bytes each on average, "
        f"{settings.get('partitions')} partitions)",
        "  worker    "
        + ", ".join(f"{key}={value}" for key, value in settings.items() if key != "partitions"),
        f"  latency   {info.get('rate'):g} events/s for {info.get('duration_seconds'):g} s "
        "of steady traffic after the backlog",
        "",
        f"  {'figure':<48} {'value':>20}   vs raw consume",
        f"  {'-' * 48} {'-' * 20}   {'-' * 14}",
    ]
    ratios = report.ratios()
    for name, label in ROWS:
        if name not in report.figures:
            continue
        value, unit = report.figures[name]
        ratio = f"{ratios[name]:.3f}x" if name in ratios else ("1x" if name == BASELINE else "")
        lines.append(f"  {label:<48} {_value(value, unit):>20}   {ratio}")
    if ratios:
        lines.append("")
        for name, short in RATIO_NAMES:
            if name in ratios:
                lines.append(f"  {short} / raw consume = {ratios[name]:.3f}x")
    growth = info.get("compute_points", {})
    if growth:
        steps = ", ".join(
            f"{int(size):,} events: {ms:,.1f} ms"
            for size, ms in growth["growth_ms_by_ledger_events"].items()
        )
        lines += [
            "",
            f"  compute_points by ledger size: {steps}",
            f"    ({growth['points']} points; {growth['contracts']:,} contracts in the book)",
        ]
    for phase, figures in report.counters.items():
        text = ", ".join(
            f"{key}={value:,.1f}" if key.endswith("_ms") else f"{key}={value:,.0f}"
            for key, value in figures.items()
        )
        lines.append(f"  worker counters {phase.replace('_', ' ')}: {text}")
    lines.append(
        f"  latency observations: {report.figures.get('latency_observations', (0, ''))[0]:,.0f}"
        f" (events sent: {report.figures.get('steady_sent_events', (0, ''))[0]:,.0f})"
    )
    recovery = info.get("recovery")
    if recovery:
        verdict = "identical" if recovery["identical"] else "DIFFERENT"
        lines.append(
            f"  crash recovery: {recovery['series']:,} published series after the rebuild are "
            f"{verdict} to those before the worker was killed"
            + ("" if recovery["identical"] else f" ({recovery['differing']:,} differ)")
        )
    lines.append(
        f"  bench took {info.get('bench_seconds')} s; 1-minute load average "
        f"{machine.get('load_average_1m_at_start')} at start, {info.get('load_average_1m_at_end')} "
        "at end (other work on the machine lowers every figure)"
    )
    return "\n".join(lines)
