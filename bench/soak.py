"""Soak: live traffic with duplicates and reordering while workers are killed, then the
published state must equal the batch oracle exactly.

Run ``python -m bench.soak --help``. See bench/README.md, "Soak".
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from tqdm import tqdm

from bench.chaos_audit import (
    APPLIED_IDS,
    GATE_IDS,
    accepted_count,
    read_gate_tables,
    read_state_table,
)
from bench.oracle import compute_oracle
from bench.pipeline import WorkerProcess, counters
from bench.throughput import Stack, bench_overrides, note
from bench.workload import Record, Workload
from models.errors import RevpulseError
from models.events import Event, parse_event_bytes
from models.series import MetricPoint
from sinks.readback import points_as_of, read_current
from sinks.redis_keys import RedisKeys
from streams.devstack.stack import children_stopped_on_exit, free_port
from streams.kafka.clients import read_last_batch
from streams.kafka.topics import ensure_topics
from streams.settings import Settings

DESCRIPTION = """\
Soak revpulse on the embedded stack (Tansu broker + redis-server on free ports):

  * --workers workers in one consumer group;
  * for --minutes, simulated CRM traffic stamped "now" at --rate events/s, each
    second's events shuffled, with a --duplicates share of recent events sent again;
  * every --kill-every seconds one worker (in turn) is killed with SIGKILL, as in a
    crash, and a new one started in its place;
  * then, once the ledger holds every distinct event and the workers' group has
    committed every record of every topic it reads (so nothing is in flight between
    stages), the state the workers stored in Redis must give exactly the batch oracle's
    figures (bench/oracle.py) for several days, and the current figures in Redis must
    equal the oracle's for today (compared again every second for up to 2 minutes, and
    the time printed: a change lost or applied twice never settles).

Prints a table; exits 1 if a figure differs or the ledger does not converge.
"""
POLL_SECONDS = 1.0
# how long the figures may take to settle once the ledger counts every event (entity stage)
SETTLE_TIMEOUT_SECONDS = 120.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="traffic time (10)")
    parser.add_argument("--rate", type=float, default=50.0, help="events per second (50)")
    parser.add_argument("--workers", type=int, default=2, help="workers in the group (2)")
    parser.add_argument(
        "--kill-every", type=float, default=60.0, help="seconds between worker kills (60; 0: none)"
    )
    parser.add_argument(
        "--duplicates", type=float, default=0.1, help="share of events sent twice (0.1)"
    )
    parser.add_argument("--seed", type=int, default=7, help="simulator and shuffle seed (7)")
    parser.add_argument(
        "--converge-timeout", type=float, default=300.0, help="seconds to wait at the end (300)"
    )
    parser.add_argument("--json", action="store_true", help="JSON on stdout, table on stderr")
    parser.add_argument("--keep-logs", action="store_true", help="keep the servers' logs")
    return parser


@dataclass
class Traffic:
    """What was sent: the distinct events (for the oracle) and how many records in all."""

    distinct: dict[str, Event] = field(default_factory=dict)
    records: int = 0
    duplicates: int = 0


@dataclass
class Crew:
    """The workers, each replaced by a new process (same port, same data directory, as a
    restarted pod on its own volume) when killed."""

    settings: Settings
    overrides: list[dict[str, Any]]
    log_dir: Path
    workers: list[WorkerProcess] = field(default_factory=list)
    kills: int = 0
    peak_memory_mib: float = 0.0

    def start(self) -> None:
        for index, overrides in enumerate(self.overrides):
            self.workers.append(self._spawn(index, overrides))
        for worker in self.workers:
            worker.wait_ready(timeout_seconds=120)

    def _spawn(self, index: int, overrides: dict[str, Any]) -> WorkerProcess:
        run_dir = self.log_dir / f"worker{index}-{self.kills}"
        data_dir = self.log_dir / f"worker{index}-data"
        return WorkerProcess(Settings(**overrides), overrides, run_dir, data_dir=data_dir)

    def kill_next(self) -> None:
        index = self.kills % len(self.workers)
        victim = self.workers[index]
        victim.child.kill()
        victim.child.process.wait()
        self.kills += 1
        self.workers[index] = self._spawn(index, self.overrides[index])

    def samples(self) -> list[dict[str, float]]:
        """Each live worker's counters (a worker still starting is skipped)."""
        found = []
        for worker in self.workers:
            try:
                found.append(counters(worker.samples()))
            except (OSError, RuntimeError):
                continue
        for figures in found:
            self.peak_memory_mib = max(self.peak_memory_mib, figures["resident_memory_mib"])
        return found

    def ledger_events(self) -> float:
        """The owner's ledger size (the other workers export 0 or nothing)."""
        return max((figures["ledger"] for figures in self.samples()), default=0.0)

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()


async def send_traffic(
    settings: Settings, workload: Workload, args: argparse.Namespace, crew: Crew
) -> Traffic:
    """Send live events for --minutes, one shuffled second at a time, killing on schedule."""
    rng = random.Random(args.seed)
    traffic = Traffic()
    recent: list[Record] = []
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    loop = asyncio.get_running_loop()
    duration = args.minutes * 60
    started = loop.time()
    next_kill = started + args.kill_every if args.kill_every > 0 else float("inf")
    try:
        with tqdm(total=round(duration), desc="soak traffic", unit="s", disable=None) as bar:
            while (elapsed := loop.time() - started) < duration:
                second: list[Record] = []
                while len(second) < args.rate:
                    second.extend(workload.live(dt.datetime.now(dt.UTC)))
                for record in second:
                    event = parse_event_bytes(record.value)
                    traffic.distinct[event.event_id] = event
                again = rng.sample(recent, min(len(recent), round(len(second) * args.duplicates)))
                recent = (recent + second)[-2000:]
                batch = second + again
                rng.shuffle(batch)
                for record in batch:
                    await producer.send(settings.events_topic, value=record.value, key=record.key)
                await producer.flush()
                traffic.records += len(batch)
                traffic.duplicates += len(again)
                if loop.time() >= next_kill:
                    crew.kill_next()
                    next_kill += args.kill_every
                bar.update(round(elapsed) - bar.n)
                await asyncio.sleep(max(0.0, started + elapsed + 1.0 - loop.time()))
    finally:
        await producer.stop()
    return traffic


async def state_figures(settings: Settings) -> dict[str, int]:
    """What the ledger-state changelog holds now: its records, the keys a table read from
    it holds, the event ids applied (held by the id gate's partitions, or by the ledger
    of an earlier version), and the ledger's own count of applied events (the two differ
    only if an event was applied twice)."""
    records, table = await read_state_table(settings)
    gates = await read_gate_tables(settings)
    held = [(APPLIED_IDS, table)] + [(GATE_IDS, gate) for gate in gates]
    return {
        "changelog_records": records,
        "state_keys": len(table),
        "applied_ids": sum(1 for ids, keys in held for key in keys if key.startswith(ids)),
        "gate_partitions": len(gates),
        "accepted_count": accepted_count(table),
    }


def stored_points(settings: Settings, day: dt.date) -> list[MetricPoint]:
    return asyncio.run(
        points_as_of(
            settings.redis_url.get_secret_value(),
            RedisKeys(settings.redis_prefix),
            settings.policy(),
            day,
        )
    )


def current_points(settings: Settings) -> list[MetricPoint]:
    points, _meta = asyncio.run(
        read_current(settings.redis_url.get_secret_value(), RedisKeys(settings.redis_prefix))
    )
    return sorted(points, key=lambda p: p.series_id)


def compare(settings: Settings, events: list[Event]) -> dict[str, Any]:
    """Stored state vs the oracle on several days, and the current hash vs today's oracle."""
    today = dt.datetime.now(dt.UTC).date()
    results: dict[str, Any] = {}
    for label, day in (
        ("state, yesterday", today - dt.timedelta(days=1)),
        ("state, today", today),
        ("state, in 40 days", today + dt.timedelta(days=40)),
        ("state, in 400 days", today + dt.timedelta(days=400)),
    ):
        expected = sorted(compute_oracle(events, day, settings.policy()), key=lambda p: p.series_id)
        results[label] = _difference(expected, stored_points(settings, day))
    expected_today = sorted(
        (p for p in compute_oracle(events, today, settings.policy()) if p.value is not None),
        key=lambda p: p.series_id,
    )
    results["current figures, today"] = _difference(expected_today, current_points(settings))
    return results


def _difference(expected: list[MetricPoint], found: list[MetricPoint]) -> dict[str, Any]:
    want = {p.series_id: p for p in expected}
    have = {p.series_id: p for p in found}
    differing = sorted(sid for sid in want.keys() | have.keys() if want.get(sid) != have.get(sid))
    return {"series": len(want), "differing": len(differing), "examples": differing[:5]}


def compare_until_equal(
    settings: Settings, events: list[Event], timeout_seconds: float
) -> tuple[dict[str, Any], float]:
    """:func:`compare`, again every POLL_SECONDS until every comparison is equal or
    ``timeout_seconds`` have passed: the last results, and the seconds waited. With the
    entity stage the ledger counts an event before the hand-offs it caused (a contract
    to its lead and its account) are applied, so the figures settle a little later; a
    change lost or applied twice never settles."""
    started = time.monotonic()
    while True:
        results = compare(settings, events)
        waited = time.monotonic() - started
        if all(r["differing"] == 0 for r in results.values()) or waited > timeout_seconds:
            return results, waited
        time.sleep(POLL_SECONDS)


async def uncommitted_records(settings: Settings) -> int:
    """Records of the topics the workers read that their group has not committed yet.

    A partition's end is read from its last batch: Tansu reports the end as the last
    batch's base offset + 1, which a committed offset passes while that batch's other
    records may still be unread."""
    partitions = {
        settings.events_topic: settings.partitions,
        settings.by_id_topic: settings.partitions,
        settings.facts_topic: 1,
    }
    if settings.entity_stage:
        partitions[settings.by_entity_topic] = settings.partitions
    places = [TopicPartition(t, p) for t, count in partitions.items() for p in range(count)]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(settings.app_id, partitions=places)
    finally:
        await admin.close()
    behind = 0
    for place in places:
        last = await read_last_batch(settings.kafka_bootstrap, place.topic, place.partition)
        end = last[-1].offset + 1 if last else 0
        found = committed.get(place)
        done = found.offset if found is not None and found.offset >= 0 else 0
        behind += max(0, end - done)
    return behind


def wait_drained(settings: Settings, timeout_seconds: float) -> float:
    """Seconds until the workers' group has committed every record it reads; raises on
    timeout with the records still behind."""
    started = time.monotonic()
    while (behind := asyncio.run(uncommitted_records(settings))) > 0:
        if time.monotonic() - started > timeout_seconds:
            raise RuntimeError(
                f"{behind:,} records of the workers' topics still uncommitted after "
                f"{timeout_seconds} s"
            )
        time.sleep(POLL_SECONDS)
    return time.monotonic() - started


def wait_converged(crew: Crew, target: int, timeout_seconds: float) -> float:
    """Seconds until the owner's ledger holds ``target`` events; raises on timeout."""
    started = time.monotonic()
    with tqdm(total=target, desc="soak: ledger", unit="ev", disable=None) as bar:
        while time.monotonic() - started < timeout_seconds:
            held = crew.ledger_events()
            bar.update(max(0, int(held) - bar.n))
            if held >= target:
                return time.monotonic() - started
            time.sleep(POLL_SECONDS)
    raise RuntimeError(
        f"the ledger holds {crew.ledger_events():,.0f} of {target:,} events after "
        f"{timeout_seconds} s"
    )


def run(args: argparse.Namespace, report: dict[str, Any]) -> bool:
    log_dir = Path(tempfile.mkdtemp(prefix="revpulse-soak-"))
    stack = Stack(log_dir)
    crew: Crew | None = None
    succeeded = False
    try:
        note(f"starting the embedded broker and Redis (logs in {log_dir})")
        stack.start()
        shared = bench_overrides(stack, argparse.Namespace(span_days=5, partitions=4), log_dir)
        shared.pop("lateness_seconds")  # the default: live traffic is never days late
        per_worker = [{**shared, "web_port": free_port()} for _ in range(args.workers)]
        settings = Settings(**per_worker[0])
        asyncio.run(ensure_topics(settings))
        note(f"starting {args.workers} workers")
        crew = Crew(settings, per_worker, log_dir)
        crew.start()
        workload = Workload(args.seed, dt.datetime.now(dt.UTC), 1)
        traffic = asyncio.run(send_traffic(settings, workload, args, crew))
        note(f"traffic done: {traffic.records:,} records; waiting for the ledger")
        converge_seconds = wait_converged(crew, len(traffic.distinct), args.converge_timeout)
        note("the ledger holds every event; waiting for every topic to be committed")
        drain_seconds = wait_drained(settings, args.converge_timeout)
        time.sleep(2 * settings.publish_interval_seconds + 0.5)  # a publish of the whole ledger
        samples = crew.samples()
        results, settle_seconds = compare_until_equal(
            settings, list(traffic.distinct.values()), SETTLE_TIMEOUT_SECONDS
        )
        state = asyncio.run(state_figures(settings))
        report.update(
            records_sent=traffic.records,
            distinct_events=len(traffic.distinct),
            duplicates_sent=traffic.duplicates,
            kills=crew.kills,
            converge_seconds=round(converge_seconds, 1),
            drain_seconds=round(drain_seconds, 1),
            settle_seconds=round(settle_seconds, 1),
            peak_worker_memory_mib=round(crew.peak_memory_mib, 1),
            duplicates_counted=sum(figures["duplicates"] for figures in samples),
            rejected=sum(figures["rejected"] for figures in samples),
            late=sum(figures["late"] for figures in samples),
            state=state,
            comparisons=results,
        )
        succeeded = all(result["differing"] == 0 for result in results.values()) and (
            state["accepted_count"] == state["applied_ids"] == len(traffic.distinct)
        )
        return succeeded
    finally:
        if crew is not None:
            crew.stop()
        stack.stop()
        if succeeded and not args.keep_logs:
            shutil.rmtree(log_dir, ignore_errors=True)
        else:
            note(f"logs kept in {log_dir}")


def render(report: dict[str, Any]) -> str:
    lines = [
        "revpulse soak",
        f"  command   {report['command']}",
        f"  traffic   {report['minutes']:g} min at {report['rate']:g} events/s, "
        f"{report['workers']} workers, a kill every {report['kill_every']:g} s",
        f"  sent      {report['records_sent']:,} records: {report['distinct_events']:,} distinct "
        f"events and {report['duplicates_sent']:,} sent again",
        f"  workers   {report['kills']} killed with SIGKILL and replaced; ledger converged "
        f"{report['converge_seconds']} s after the traffic stopped, every topic committed "
        f"{report['drain_seconds']} s later, figures equal or given up "
        f"{report['settle_seconds']} s after that; peak worker memory "
        f"{report['peak_worker_memory_mib']} MiB",
        f"  counted   duplicates {report['duplicates_counted']:,.0f} (by the live workers), "
        f"rejected {report['rejected']:,.0f}, late {report['late']:,.0f}",
        f"  state     changelog {report['state']['changelog_records']:,} records for "
        f"{report['state']['state_keys']:,} keys; {report['state']['applied_ids']:,} event "
        f"ids applied, counted {report['state']['accepted_count']:,} times "
        f"(distinct sent: {report['distinct_events']:,})",
        "",
    ]
    for label, result in report["comparisons"].items():
        verdict = (
            "equal to the oracle"
            if result["differing"] == 0
            else f"DIFFERENT in {result['differing']} (e.g. {', '.join(result['examples'])})"
        )
        lines.append(f"  {label:<24} {result['series']:>5} series   {verdict}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.minutes <= 0 or args.rate <= 0 or args.workers < 1:
        build_parser().error("--minutes and --rate must be positive, --workers at least 1")
    given = list(sys.argv[1:] if argv is None else argv)
    report: dict[str, Any] = {
        "command": shlex.join(["python", "-m", "bench.soak", *given]),
        "minutes": args.minutes,
        "rate": args.rate,
        "workers": args.workers,
        "kill_every": args.kill_every,
    }
    try:
        with children_stopped_on_exit(note):
            equal = run(args, report)
    except KeyboardInterrupt:
        print("soak STOPPED: interrupted; every process it started is stopped", file=sys.stderr)
        return 130
    except (RuntimeError, RevpulseError, OSError) as error:
        # a worker died, the ledger did not converge, a server did not start
        print(f"soak FAILED: {error}", file=sys.stderr)
        return 1
    table = render(report)
    if args.json:
        print(table, file=sys.stderr)
        print(json.dumps(report, indent=2))
    else:
        print(table)
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
