"""Throughput and latency of revpulse against a raw-aiokafka baseline, on the embedded stack.

Run ``python -m bench.throughput --help``. See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bench.domain import DomainFigures, measure_domain
from bench.kafka_io import preload, produce_steadily, raw_consume
from bench.pipeline import (
    LATENCY,
    BenchError,
    Histogram,
    WorkerProcess,
    business_figures,
    counters,
)
from bench.report import Report, machine_info, render_table
from bench.workload import Record, Workload, history_end
from models.errors import RevpulseError
from streams.devstack.stack import (
    ChildProcess,
    children_stopped_on_exit,
    free_port,
    start_broker,
    start_redis,
)
from streams.kafka.topics import ensure_topics
from streams.settings import Settings

DESCRIPTION = """\
Measure revpulse on the embedded stack (Tansu broker + redis-server, started on free
ports and stopped at the end), against a raw-aiokafka baseline measured in the same run:

  1. generate N funnel events (seeded FunnelSimulator, occurred_at spread over
     --span-days) and pre-load them into a fresh events topic;
  2. baseline: raw aiokafka consume + json.loads of that topic (events/s);
  3. domain, in this process: parse_event_bytes and Ledger.apply (events/s),
     compute_points for the resulting ledger (ms) and at 1/4 and 1/2 of it;
  4. pipeline: start `revpulse worker` (a subprocess) on the pre-loaded topic and
     time until its ledger holds all N events (revpulse_ledger_events on /metrics);
  5. latency: produce at --rate events/s for --duration s while the worker runs,
     and estimate p50/p95 of revpulse_event_to_publish_latency_seconds over them.

The worker runs with the default settings (REVPULSE_* variables in your environment
apply, e.g. REVPULSE_BATCH_MAX_EVENTS), except for its ports, topics and a lateness
that covers --span-days (the backlog is read from several partitions, so event time
goes back and forth by more than the default 7 days).
"""
QUICK_DEFAULTS = {"repeat": 1, "duration": 4.0, "rate": 100.0}
FULL_DEFAULTS = {"repeat": 3, "duration": 20.0, "rate": 200.0}
POLL_SECONDS = 1.0  # a /metrics scrape costs the worker CPU: keep the observer light


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.throughput",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--events", type=int, default=100_000, metavar="N", help="events to pre-load (100000)"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        metavar="R",
        help="events/s in the latency phase (200; 100 with --quick)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="S",
        help="seconds of steady traffic in the latency phase (20; 4 with --quick)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="runs of the baseline and domain phases, medians reported (3; 1 with --quick)",
    )
    parser.add_argument("--seed", type=int, default=7, help="simulator seed (7)")
    parser.add_argument(
        "--span-days", type=int, default=365, help="days of event time the backlog spans (365)"
    )
    parser.add_argument(
        "--partitions", type=int, default=4, help="partitions of the events topic (4)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="the short CI form: one run each, 4 s of traffic"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object on stdout (the table goes to stderr)",
    )
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the broker, Redis and worker logs"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="give up when the worker makes no progress for S seconds (60)",
    )
    parser.add_argument(
        "--metrics-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="give up when the worker's /metrics does not answer within S seconds (10)",
    )
    return parser


def note(message: str) -> None:
    tqdm.write(f"bench: {message}", file=sys.stderr)


@dataclass
class Stack:
    """The embedded broker and Redis, on free ports, for one run."""

    log_dir: Path
    kafka: str = ""
    redis: str = ""
    children: list[ChildProcess] = field(default_factory=list)

    def start(self) -> None:
        kafka_port, redis_port = free_port(), free_port()
        self.children.append(start_broker(kafka_port, self.log_dir))
        self.children.append(start_redis(redis_port, self.log_dir))
        self.kafka = f"127.0.0.1:{kafka_port}"
        self.redis = f"redis://127.0.0.1:{redis_port}/0"

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()
        self.children.clear()


def bench_overrides(stack: Stack, args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    """The settings the benchmark sets for its worker; every other one keeps its default."""
    tag = f"bench-{uuid.uuid4().hex[:8]}"
    values: dict[str, Any] = {
        "kafka_bootstrap": stack.kafka,
        "redis_url": stack.redis,
        "app_id": tag,
        "events_topic": f"{tag}-events",
        "by_id_topic": f"{tag}-by-id",
        "facts_topic": f"{tag}-facts",
        "dead_letter_topic": f"{tag}-dead-letters",
        "late_topic": f"{tag}-late",
        "alerts_topic": f"{tag}-alerts",
        "redis_prefix": tag,
        "partitions": args.partitions,
        "web_port": free_port(),
        "lateness_seconds": (args.span_days + 2) * 86400,
    }
    return values


def median_rate(count: int, seconds: Sequence[float]) -> float:
    return count / statistics.median(seconds)


@dataclass
class Timeline:
    """Monotonic times, as seen by polling /metrics every POLL_SECONDS."""

    first_consumed: float | None = None  # the intake counter is above 0
    all_consumed: float | None = None  # the intake counter reached the target
    all_applied: float = 0.0  # the revpulse_ledger_events gauge reached the target
    # (seconds since the first poll, events consumed by the intake, events in the ledger)
    trace: list[tuple[float, float, float]] = field(default_factory=list)


class Progress:
    """Polls the worker until a counter reaches a target; fails on a stall."""

    def __init__(self, worker: WorkerProcess, stall_seconds: float) -> None:
        self.worker = worker
        self.stall_seconds = stall_seconds

    def wait_ledger(self, target: int, desc: str) -> Timeline:
        """Poll /metrics until the ledger holds ``target`` events; when things happened."""
        timeline = Timeline()
        last_seen, last_change = (-1.0, -1.0), time.monotonic()
        polled_from = last_change
        with tqdm(total=target, desc=desc, unit="ev", disable=None) as bar:
            while True:
                figures = counters(self.worker.samples())
                now = time.monotonic()
                consumed, ledger = figures["consumed"], figures["ledger"]
                timeline.trace.append((round(now - polled_from, 2), consumed, ledger))
                if timeline.first_consumed is None and consumed > 0:
                    timeline.first_consumed = now
                if timeline.all_consumed is None and consumed >= target:
                    timeline.all_consumed = now
                bar.update(max(0, int(ledger) - bar.n))
                if ledger >= target:
                    timeline.all_applied = now
                    return timeline
                if (ledger, consumed) != last_seen:
                    last_seen, last_change = (ledger, consumed), now
                if now - last_change > self.stall_seconds:
                    raise RuntimeError(
                        f"no progress for {self.stall_seconds} s: {figures}\n"
                        f"{self.worker.log_tail()}"
                    )
                time.sleep(POLL_SECONDS)


def run_pipeline(
    settings: Settings,
    overrides: dict[str, Any],
    workload: Workload,
    count: int,
    args: argparse.Namespace,
    log_dir: Path,
    report: Report,
) -> None:
    note("starting the revpulse worker")
    spawned = time.monotonic()
    worker = WorkerProcess(settings, overrides, log_dir, args.metrics_timeout)
    try:
        ready = worker.wait_ready(timeout_seconds=90)
        report.set("worker_start_seconds", ready - spawned, "s")
        progress = Progress(worker, args.timeout)
        timeline = progress.wait_ledger(count, "pipeline: ledger")
        # the clock starts when the intake is seen consuming, so group join is not counted
        started = timeline.first_consumed or ready
        report.set("worker_first_event_seconds", started - ready, "s")
        elapsed = timeline.all_applied - started
        if elapsed <= 0:  # everything arrived within one poll: count from ready instead
            elapsed = timeline.all_applied - ready
        report.set("pipeline_events_per_second", count / elapsed, "events/s")
        if timeline.all_consumed is not None:
            consumed_seconds = timeline.all_consumed - started
            if consumed_seconds <= 0:  # all read within one poll: count from ready instead
                consumed_seconds = timeline.all_consumed - ready
            report.set("intake_events_per_second", count / consumed_seconds, "events/s")
        report.counters["after_backlog"] = counters(worker.samples())
        report.info["backlog_trace_seconds_consumed_applied"] = timeline.trace

        before = Histogram.from_samples(worker.samples(), LATENCY)
        note(f"steady traffic: {args.rate:g} events/s for {args.duration:g} s")

        def next_records() -> list[Record]:
            return workload.live(dt.datetime.now(dt.UTC))

        sent = asyncio.run(
            produce_steadily(
                settings.kafka_bootstrap,
                settings.events_topic,
                next_records,
                args.rate,
                args.duration,
            )
        )
        report.set("steady_sent_events", float(sent), "events")
        progress.wait_ledger(count + sent, "latency: ledger")
        # the latency is observed right after the publish that includes the last batch
        time.sleep(2 * settings.publish_interval_seconds + 0.5)
        samples = worker.samples()
        steady = Histogram.from_samples(samples, LATENCY).minus(before)
        report.counters["at_end"] = counters(samples)
        report.set("latency_observations", steady.count, "events")
        for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
            value = steady.quantile(q)
            if value is not None:
                report.set(f"latency_{name}_seconds", value, "s")
        if steady.count:
            report.set("latency_mean_seconds", steady.sum / steady.count, "s")
        worker = measure_recovery(worker, settings, overrides, log_dir, count + sent, args, report)
    finally:
        worker.stop()


def measure_recovery(
    worker: WorkerProcess,
    settings: Settings,
    overrides: dict[str, Any],
    log_dir: Path,
    target: int,
    args: argparse.Namespace,
    report: Report,
) -> WorkerProcess:
    """Kill the worker (SIGKILL, as in a crash), start another, time its load from the
    ledger-state changelog, and check that it publishes the same figures. Returns the new one."""
    before = business_figures(worker.samples())
    note("crash recovery: killing the worker, starting a new one")
    worker.child.kill()
    worker.child.process.wait()
    spawned = time.monotonic()
    worker = WorkerProcess(settings, overrides, log_dir / "after-crash", args.metrics_timeout)
    try:
        return _recovered(worker, before, spawned, settings, target, args, report)
    except BaseException:
        worker.stop()  # the caller's clean-up stops the worker it knew: the killed one
        raise


def _recovered(
    worker: WorkerProcess,
    before: dict[Any, float],
    spawned: float,
    settings: Settings,
    target: int,
    args: argparse.Namespace,
    report: Report,
) -> WorkerProcess:
    ready = worker.wait_ready(timeout_seconds=120)
    report.set("recovery_ready_seconds", ready - spawned, "s")
    rebuilt = Progress(worker, args.timeout).wait_ledger(target, "recovery: ledger")
    report.set("recovery_rebuilt_seconds", rebuilt.all_applied - spawned, "s")
    time.sleep(2 * settings.publish_interval_seconds + 0.5)  # a publish of the whole ledger
    samples = worker.samples()
    after = business_figures(samples)
    differing = {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}
    report.info["recovery"] = {
        "series": len(before),
        "identical": not differing,
        "differing": len(differing),
        "differing_examples": sorted(str(key) for key in differing)[:5],
    }
    report.counters["after_recovery"] = counters(samples)
    return worker


def record_domain(report: Report, figures: DomainFigures, count: int) -> None:
    report.set("parse_events_per_second", count / figures.parse_seconds, "events/s")
    report.set("ledger_apply_events_per_second", count / figures.apply_seconds, "events/s")
    report.set("compute_points_ms", figures.compute_points_seconds * 1000, "ms")
    report.info["compute_points"] = {
        "points": figures.points,
        "contracts": figures.contracts,
        "growth_ms_by_ledger_events": {
            str(size): round(seconds * 1000, 2) for size, seconds in figures.growth
        },
    }


def run(args: argparse.Namespace, report: Report) -> None:
    count = args.events
    log_dir = Path(tempfile.mkdtemp(prefix="revpulse-bench-"))
    report.info["log_dir"] = str(log_dir)
    stack = Stack(log_dir)
    succeeded = False
    try:
        note(f"starting the embedded broker and Redis (logs in {log_dir})")
        stack.start()
        overrides = bench_overrides(stack, args, log_dir)
        settings = Settings(**overrides)
        asyncio.run(ensure_topics(settings))
        report.info["worker_settings"] = {
            "batch_max_events": settings.batch_max_events,
            "batch_within_seconds": settings.batch_within_seconds,
            "publish_interval_seconds": settings.publish_interval_seconds,
            "clock": settings.clock,
            "partitions": settings.partitions,
            "lateness_days": settings.lateness_seconds // 86400,
        }

        note(f"generating {count} events (seed {args.seed}, {args.span_days} days)")
        workload = Workload(args.seed, history_end(dt.datetime.now(dt.UTC)), args.span_days)
        records = workload.history(count)
        report.info["mean_event_bytes"] = round(sum(len(r.value) for r in records) / count, 1)
        seconds = asyncio.run(preload(settings.kafka_bootstrap, settings.events_topic, records))
        report.set("preload_events_per_second", count / seconds, "events/s")

        raw_runs = []
        for _ in tqdm(range(args.repeat), desc="raw aiokafka consume", unit="run", disable=None):
            raw_runs.append(
                asyncio.run(
                    raw_consume(settings.kafka_bootstrap, settings.events_topic, count, 120)
                )
            )
        report.set("raw_consume_events_per_second", median_rate(count, raw_runs), "events/s")

        figures = measure_domain([r.value for r in records], settings.policy(), args.repeat)
        record_domain(report, figures, count)

        run_pipeline(settings, overrides, workload, count, args, log_dir, report)
        succeeded = True
    finally:
        stack.stop()
        if succeeded and not args.keep_logs:
            shutil.rmtree(log_dir, ignore_errors=True)
            report.info.pop("log_dir", None)
        elif not succeeded:
            note(f"logs kept in {log_dir}")


def run_cleanly(args: argparse.Namespace, report: Report) -> int:
    """``run``, stopping every process it started however it ends; 0, or the exit status
    after one line saying why it failed."""
    try:
        with children_stopped_on_exit(note):
            run(args, report)
    except KeyboardInterrupt:
        print("bench STOPPED: interrupted; every process it started is stopped", file=sys.stderr)
        return 130
    except (BenchError, RevpulseError, RuntimeError, OSError) as error:
        print(f"bench FAILED: {error}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    defaults = QUICK_DEFAULTS if args.quick else FULL_DEFAULTS
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.events < 10 or args.repeat < 1 or args.rate <= 0 or args.duration <= 0:
        parser.error("--events must be at least 10; --repeat, --rate, --duration positive")
    given = list(sys.argv[1:] if argv is None else argv)
    command = shlex.join(["python", "-m", "bench.throughput", *given])
    report = Report(command=command, events=args.events, machine=machine_info())
    report.info.update(seed=args.seed, span_days=args.span_days, rate=args.rate,
                       duration_seconds=args.duration, repeat=args.repeat)  # fmt: skip
    started = time.monotonic()
    outcome = run_cleanly(args, report)
    if outcome:
        return outcome
    report.info["bench_seconds"] = round(time.monotonic() - started, 1)
    report.info["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    if args.json:  # the table still goes to people, on stderr
        print(render_table(report), file=sys.stderr)
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(render_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
