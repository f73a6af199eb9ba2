"""End-to-end events/s of one worker against several in one group, on the same backlog.

Run ``python -m bench.scale_out --help``. See bench/README.md ("Scale-out") for what the
figures mean.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bench.kafka_io import preload
from bench.pipeline import BenchError, WorkerProcess, counters, labelled, total
from bench.throughput import Stack, bench_overrides, note
from bench.workload import Record, Workload, history_end
from models.errors import RevpulseError
from streams.devstack.stack import children_stopped_on_exit, free_port
from streams.kafka.topics import ensure_topics
from streams.settings import Settings

DESCRIPTION = """\
Measure how the pipeline's end-to-end events/s changes from one `revpulse worker` to
several in one consumer group, on the embedded stack (Tansu + redis-server, on free
ports, stopped at the end). For each group size (1, then --workers):

  1. start the workers (each with its own data directory and web port) on fresh topics
     and wait until each answers /readyz and one of them owns the ledger;
  2. pre-load N events (the seeded funnel simulator, spread over --span-days) into the
     events topic;
  3. time from the first event consumed to the ledger owner holding all N, and read
     each worker's share of the intake and the CPU seconds it used.

The workers keep their default settings except ports, topics and a lateness that covers
--span-days (as in bench.throughput). On a machine with fewer cores than workers, the
workers share them: the figure is what this machine gives, not what N machines would.
"""
POLL_SECONDS = 1.0
SETTLE_TIMEOUT_SECONDS = 120.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale_out",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--events",
        type=int,
        default=200_000,
        metavar="N",
        help="events to pre-load for each group size (200000)",
    )
    parser.add_argument("--workers", type=int, default=2, help="workers in the larger group (2)")
    parser.add_argument(
        "--entity-stage",
        action="store_true",
        help="run the workers with REVPULSE_ENTITY_STAGE=true",
    )
    parser.add_argument(
        "--span-days", type=int, default=365, help="days of event time the backlog spans (365)"
    )
    parser.add_argument(
        "--partitions", type=int, default=4, help="partitions of the events topic (4)"
    )
    parser.add_argument("--seed", type=int, default=7, help="simulator seed (7)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        metavar="S",
        help="give up when no worker makes progress for S seconds (120)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object on stdout (the table goes to stderr)",
    )
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the broker, Redis and worker logs"
    )
    return parser


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class GroupFigures:
    """What one group size measured."""

    workers: int
    events_per_second: float
    seconds: float
    consumed_by_worker: list[float] = field(default_factory=list)
    cpu_seconds_by_worker: list[float] = field(default_factory=list)
    owner_index: int = -1

    def as_dict(self) -> dict[str, Any]:
        return {
            "workers": self.workers,
            "events_per_second": round(self.events_per_second, 1),
            "seconds": round(self.seconds, 2),
            "consumed_by_worker": self.consumed_by_worker,
            "cpu_seconds_by_worker": [round(s, 1) for s in self.cpu_seconds_by_worker],
            "ledger_owner_index": self.owner_index,
        }


class Group:
    """``size`` workers of one deployment, each with its own data directory and port."""

    def __init__(self, overrides: dict[str, Any], size: int, log_dir: Path) -> None:
        self.workers: list[WorkerProcess] = []
        for index in range(size):
            own = {**overrides, "web_port": free_port()}
            self.workers.append(
                WorkerProcess(
                    Settings(**own),
                    own,
                    log_dir,
                    data_dir=f"data-{index}",
                    name=f"worker-{index}",
                )
            )

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()

    def settle(self) -> None:
        """Wait until every worker is ready and one of them owns the ledger."""
        for worker in self.workers:
            worker.wait_ready(timeout_seconds=SETTLE_TIMEOUT_SECONDS)
        deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            owners = [total(w.samples(), "revpulse_ledger_owner") for w in self.workers]
            if sum(owners) == 1:
                return
            time.sleep(POLL_SECONDS)
        raise BenchError(
            f"no single ledger owner among {len(self.workers)} workers in "
            f"{SETTLE_TIMEOUT_SECONDS:g} s"
        )

    def measure(self, target: int, stall_seconds: float) -> GroupFigures:
        """Poll until the ledger owner holds ``target`` events; time it from the first
        event consumed."""
        started: float | None = None
        cpu_before = [cpu_seconds(w.child.process.pid) for w in self.workers]
        last_seen, last_change = -1.0, time.monotonic()
        desc = f"{len(self.workers)} worker(s): ledger"
        with tqdm(total=target, desc=desc, unit="ev", disable=None) as bar:
            while True:
                samples = [worker.samples() for worker in self.workers]
                now = time.monotonic()
                figures = [counters(s) for s in samples]
                consumed = sum(f["consumed"] for f in figures)
                ledger = max(f["ledger"] for f in figures)
                if started is None and consumed > 0:
                    started = now
                bar.update(max(0, int(ledger) - bar.n))
                if ledger >= target:
                    break
                if consumed + ledger != last_seen:
                    last_seen, last_change = consumed + ledger, now
                if now - last_change > stall_seconds:
                    raise BenchError(f"no progress for {stall_seconds:g} s: {figures}")
                time.sleep(POLL_SECONDS)
        assert started is not None  # the ledger cannot hold events nobody consumed
        seconds = max(now - started, POLL_SECONDS)
        owners = [labelled(s, "revpulse_ledger_owner") for s in samples]
        return GroupFigures(
            workers=len(self.workers),
            events_per_second=target / seconds,
            seconds=seconds,
            consumed_by_worker=[f["consumed"] for f in figures],
            cpu_seconds_by_worker=[
                cpu_seconds(w.child.process.pid) - before
                for w, before in zip(self.workers, cpu_before, strict=True)
            ],
            owner_index=owners.index(max(owners)),
        )


def measure_group(
    stack: Stack, args: argparse.Namespace, size: int, records: Sequence[Record], log_dir: Path
) -> GroupFigures:
    overrides = bench_overrides(stack, args, log_dir)
    overrides["entity_stage"] = args.entity_stage
    asyncio.run(ensure_topics(Settings(**overrides)))
    note(f"starting {size} worker(s) and waiting for the group to settle")
    group = Group(overrides, size, log_dir / f"workers-{size}")
    try:
        group.settle()
        note(f"pre-loading {len(records):,} events")
        asyncio.run(preload(stack.kafka, overrides["events_topic"], records))
        return group.measure(len(records), args.timeout)
    finally:
        group.stop()


def render(figures: list[GroupFigures], args: argparse.Namespace) -> str:
    base = figures[0].events_per_second
    stage = "on" if args.entity_stage else "off"
    lines = [
        f"scale-out: {args.events:,} events, {args.partitions} partitions, entity stage "
        f"{stage}, {os.cpu_count()} cores",
        "  workers  end-to-end events/s  / one worker  intake share by worker    CPU s by worker",
    ]
    for group in figures:
        consumed = sum(group.consumed_by_worker) or 1.0
        shares = " / ".join(f"{100 * c / consumed:.0f} %" for c in group.consumed_by_worker)
        cpu = " / ".join(
            f"{s:.1f}{'*' if i == group.owner_index else ''}"
            for i, s in enumerate(group.cpu_seconds_by_worker)
        )
        lines.append(
            f"  {group.workers:>7}  {group.events_per_second:>19,.0f}  "
            f"{group.events_per_second / base:>11.2f}x  {shares:<24}  {cpu}"
        )
    lines.append("  (* the worker that owns the ledger)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> list[GroupFigures]:
    log_dir = Path(tempfile.mkdtemp(prefix="revpulse-scale-out-"))
    stack = Stack(log_dir)
    succeeded = False
    try:
        note(f"starting the embedded broker and Redis (logs in {log_dir})")
        stack.start()
        note(f"generating {args.events:,} events (seed {args.seed}, {args.span_days} days)")
        workload = Workload(args.seed, history_end(dt.datetime.now(dt.UTC)), args.span_days)
        records = workload.history(args.events)
        figures = [measure_group(stack, args, size, records, log_dir) for size in (1, args.workers)]
        succeeded = True
        return figures
    finally:
        stack.stop()
        if succeeded and not args.keep_logs:
            shutil.rmtree(log_dir, ignore_errors=True)
        elif not succeeded:
            note(f"logs kept in {log_dir}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.events < 10 or args.workers < 2:
        parser.error("--events must be at least 10 and --workers at least 2")
    try:
        with children_stopped_on_exit(note):
            figures = run(args)
    except KeyboardInterrupt:
        print(
            "scale-out STOPPED: interrupted; every process it started is stopped", file=sys.stderr
        )
        return 130
    except (BenchError, RevpulseError, RuntimeError, OSError) as error:
        print(f"scale-out FAILED: {error}", file=sys.stderr)
        return 1
    table = render(figures, args)
    if args.json:
        print(table, file=sys.stderr)
        print(json.dumps([group.as_dict() for group in figures], indent=2))
    else:
        print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
