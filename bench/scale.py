"""How a worker's cost grows with history: M events over several years, into one worker.

Run ``python -m bench.scale --help``. See bench/README.md ("Scale") for each figure.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import shlex
import shutil
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from bench.kafka_io import preload
from bench.pipeline import (
    DATA_DIR,
    BenchError,
    Histogram,
    Samples,
    WorkerProcess,
    parse_samples,
    total,
)
from bench.report import machine_info
from bench.throughput import Stack, bench_overrides
from bench.worker_log import TakeoverLog, read_takeover
from bench.workload import Record, Workload, history_end
from models.errors import RevpulseError
from streams.devstack.stack import ChildProcess, children_stopped_on_exit, free_port, spawn
from streams.kafka.clients import read_last_batch
from streams.kafka.topics import ensure_topics
from streams.settings import Settings

DESCRIPTION = """\
Load a multi-year history of M events into one `revpulse worker` on the embedded stack
(Tansu + redis-server, on free ports, stopped at the end), in event-time order and with
the default lateness, in three stages (to 1/4, 1/2 and all of M). At the end of each
stage it prints the worker's resident memory, its publish compute time and the stage's
end-to-end events/s. Then it SIGKILLs the worker and times a new one on the same data
directory, then one with no local state, polling /metrics every 0.5 s meanwhile. Then a
second worker (its own data directory, same group) starts next to the running one and
becomes a standby of the ledger-state table; a top-up of events is sent, the worker
that owns the ledger is SIGKILLed, and the standby's takeover is timed. Last, a bare
Faust agent (decode only) reads the same topic, and the pipeline's events/s is printed
as a ratio to it.
"""
STAGES = (0.25, 0.5, 1.0)
PUBLISH = "revpulse_publish_duration_seconds"
PUBLISH_CPU = "revpulse_publish_compute_cpu_seconds"
LOOP_LAG = "revpulse_event_loop_lag_seconds"
LOOP_HELD_SECONDS = 0.1  # the bound on how long the event loop may be held
PROGRESS_EVERY_SECONDS = 5.0
POLL_SECONDS = 1.0
RECOVERY_POLL_SECONDS = 0.5
STANDBY_DATA_DIR = "standby-data"
# events sent while the second worker is a standby, as a share of M: the changelog
# records they make reach it only through its standby reading (its start read the rest)
TOP_UP_SHARE = 0.05
TAIL = "revpulse_ledger_changelog_tail_records"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--events", type=int, default=1_000_000, metavar="M", help="events in the history (1000000)"
    )
    parser.add_argument(
        "--years", type=float, default=3.0, help="years of event time the history spans (3)"
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
        help="give up when the worker makes no progress for S seconds (120)",
    )
    parser.add_argument(
        "--metrics-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="while loading, give up when /metrics does not answer in S s (30)",
    )
    parser.add_argument(
        "--recovery-poll-timeout",
        type=float,
        default=2.0,
        metavar="S",
        help="during recovery, a /metrics poll not answered in S s counts as a timeout (2)",
    )
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the broker, Redis and worker logs"
    )
    return parser


def say(message: str) -> None:
    print(f"scale: {message}", file=sys.stderr, flush=True)


def figure(line: str) -> None:
    print(line, flush=True)


def rss_mib(pid: int) -> float:
    """VmRSS of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise BenchError(f"no VmRSS for process {pid}")


def compute_histogram(samples: Samples) -> Histogram:
    """The worker's publish-duration histogram for the compute step only."""
    step = [(key, value) for key, value in samples.items() if ("step", "compute") in key[1]]
    buckets = sorted(
        (float(dict(labels)["le"]), value)
        for (name, labels), value in step
        if name == f"{PUBLISH}_bucket"
    )
    picked = dict(step)
    return Histogram(
        tuple(buckets),
        sum(v for (name, _), v in picked.items() if name == f"{PUBLISH}_count"),
        sum(v for (name, _), v in picked.items() if name == f"{PUBLISH}_sum"),
    )


# the compute step's wall time, and the CPU time of the thread that computed it
# ... and the event loop's lag probe (how late a short sleep woke up: the loop held)
PublishTimes = tuple[Histogram, Histogram, Histogram]


def publish_times(samples: Samples) -> PublishTimes:
    return (
        compute_histogram(samples),
        Histogram.from_samples(samples, PUBLISH_CPU),
        Histogram.from_samples(samples, LOOP_LAG),
    )


def count_over(histogram: Histogram, bound_seconds: float) -> int:
    """Observations above ``bound_seconds`` (a bucket bound): all less those up to it."""
    within = next((n for le, n in histogram.buckets if le == bound_seconds), histogram.count)
    return round(histogram.count - within)


def mean_ms(histogram: Histogram) -> float:
    return 1000 * histogram.sum / histogram.count if histogram.count else 0.0


def max_bucket(histogram: Histogram) -> str:
    """The bucket the slowest observation of ``histogram`` fell in, as 'lo-hi ms'."""
    lower, below, found = 0.0, 0.0, "none"
    for upper, cumulative in histogram.buckets:
        if cumulative > below:
            hi = "+Inf" if math.isinf(upper) else f"{upper * 1000:g}"
            found = f"{lower * 1000:g}-{hi} ms"
        lower, below = upper, cumulative
    return found


@dataclass
class Stage:
    events: int  # the ledger holds this many at its end
    seconds: float
    rss_mib: float
    publishes: int
    compute_mean_ms: float
    compute_max_bucket: str
    compute_cpu_mean_ms: float  # the publishing thread's own CPU time
    loop_lag_max_bucket: str  # the event loop's longest hold, as its lag probe saw it
    loop_lag_samples: int
    loop_lag_over_bound: int  # probe samples over LOOP_HELD_SECONDS
    series: int  # metric series the last publish computed
    bucket_days: int  # days the ledger held a bucket amount on, at the last publish


@dataclass
class Takeover:
    """A new worker after a SIGKILL, from its spawn (fixed costs included)."""

    ready_seconds: float
    ledger_seconds: float  # until its ledger holds every event again
    tail_records: float  # changelog records it read on top of its local store
    poll: Poll
    assigned_seconds: float | None = None  # until the facts topic was assigned to it (log)


@dataclass
class StandbyTakeover:
    """A standby taking the ledger over after a SIGKILL of its owner; times from the kill."""

    standby_started: bool  # it followed the ledger-state changelog as a standby
    start_records: float  # changelog records it read into its empty store at its start
    top_up_events: int  # sent while it was a standby
    written_while_standby: int  # changelog records written meanwhile
    ledger_target: float  # events the killed owner's ledger held
    log: TakeoverLog  # its assignment time and the records its recovery read
    killed_at: float  # wall-clock time of the kill
    ledger_seconds: float  # until its ledger holds every event and it published
    poll: Poll

    @property
    def assigned_seconds(self) -> float | None:
        at = self.log.assigned_at
        return None if at is None else at - self.killed_at


@dataclass
class Results:
    stages: list[tuple[Stage, float]] = field(default_factory=list)  # (stage, events/s)
    late: float = 0.0
    duplicates: float = 0.0
    same_dir: Takeover | None = None  # a restart on the same data directory
    fresh: Takeover | None = None  # a new worker with no local state
    standby: StandbyTakeover | None = None  # a standby taking over
    bare_events_per_second: float = 0.0


class Producer:
    """Sends one stage's records on a thread; counts acknowledged records."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.acknowledged = 0
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def _acknowledged(self, count: int) -> None:
        self.acknowledged += count

    def start(self, records: list[Record]) -> None:
        def send() -> None:
            try:
                asyncio.run(preload(self.bootstrap, self.topic, records, self._acknowledged))
            except BaseException as error:  # reported by the polling thread
                self.error = error

        self._thread = threading.Thread(target=send, name="scale-producer", daemon=True)
        self._thread.start()

    def check(self) -> None:
        if self.error is not None:
            raise BenchError(f"producing to the events topic failed: {self.error}")

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()
        self.check()


def load_stage(
    worker: WorkerProcess,
    producer: Producer,
    records: list[Record],
    target: int,
    before: PublishTimes,
    stall_seconds: float,
) -> tuple[Stage, PublishTimes]:
    """Produce ``records`` while polling the worker until its ledger holds ``target``."""
    started = time.monotonic()
    producer.start(records)
    last_change, last_ledger = started, -1.0
    last_said = started - PROGRESS_EVERY_SECONDS  # the first poll always reports
    while True:
        producer.check()
        samples = worker.samples()
        now = time.monotonic()
        ledger = total(samples, "revpulse_ledger_events")
        if now - last_said >= PROGRESS_EVERY_SECONDS:
            last_said = now
            say(
                f"loading: produced {producer.acknowledged:,}, ledger {ledger:,.0f} of "
                f"{target:,}, worker RSS {rss_mib(worker.child.process.pid):,.0f} MiB"
            )
        if ledger >= target:
            break
        if ledger != last_ledger:
            last_ledger, last_change = ledger, now
        if now - last_change > stall_seconds:
            raise BenchError(
                f"the ledger stayed at {ledger:,.0f} of {target:,} for "
                f"{stall_seconds:g} s; see {worker.child.log_path}"
            )
        time.sleep(POLL_SECONDS)
    seconds = time.monotonic() - started
    producer.join()
    histograms = publish_times(samples)
    pairs = zip(histograms, before, strict=True)
    since, cpu_since, lag_since = (now.minus(was) for now, was in pairs)
    stage = Stage(
        target,
        seconds,
        rss_mib(worker.child.process.pid),
        int(since.count),
        mean_ms(since),
        max_bucket(since),
        mean_ms(cpu_since),
        max_bucket(lag_since),
        round(lag_since.count),
        count_over(lag_since, LOOP_HELD_SECONDS),
        round(total(samples, "revpulse_published_series")),
        round(total(samples, "revpulse_ledger_bucket_days")),
    )
    return stage, histograms


@dataclass
class Poll:
    max_seconds: float = 0.0
    polls: int = 0
    timeouts: int = 0
    ledger: float = 0.0
    ledger_at: float | None = None


def get(port: int, path: str, timeout_seconds: float) -> tuple[int, str]:
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout_seconds) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""


def poll_metrics(port: int, target: int, timeout: float, poll: Poll, stop: threading.Event) -> None:
    """Every RECOVERY_POLL_SECONDS: GET /metrics, keep the slowest answer and the timeouts,
    until the ledger holds ``target`` (or ``stop``). Refused connections (the web server
    not up yet) are neither."""
    while not stop.is_set():
        asked = time.monotonic()
        try:
            status, body = get(port, "/metrics", timeout)
        except OSError as error:
            if isinstance(getattr(error, "reason", error), TimeoutError) or isinstance(
                error, TimeoutError
            ):
                poll.polls += 1
                poll.timeouts += 1
                poll.max_seconds = max(poll.max_seconds, time.monotonic() - asked)
        else:
            answered = time.monotonic()
            poll.polls += 1
            poll.max_seconds = max(poll.max_seconds, answered - asked)
            if status == 200:
                poll.ledger = total(parse_samples(body), "revpulse_ledger_events")
                if poll.ledger >= target:
                    poll.ledger_at = answered
                    return
        stop.wait(max(0.0, RECOVERY_POLL_SECONDS - (time.monotonic() - asked)))


def restart(
    worker: WorkerProcess,
    overrides: dict[str, Any],
    log_dir: Path,
    target: int,
    args: argparse.Namespace,
    data_dir: str,
) -> tuple[WorkerProcess, Takeover]:
    """SIGKILL the worker, start another on ``data_dir``, time its recovery."""
    worker.child.kill()
    settings = worker.settings
    offset = log_size(worker)  # the new worker's log goes on in the same file
    spawned, spawned_at = time.monotonic(), time.time()
    worker = WorkerProcess(settings, overrides, log_dir, args.metrics_timeout, data_dir)
    poll, stop = Poll(), threading.Event()
    poller = threading.Thread(
        target=poll_metrics,
        args=(settings.web_port, target, args.recovery_poll_timeout, poll, stop),
        daemon=True,
    )
    poller.start()
    try:
        ready = worker.wait_ready(timeout_seconds=args.timeout + 60)
        deadline = time.monotonic() + args.timeout + 60
        while poll.ledger_at is None:
            worker.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(
                    f"the new worker's ledger held {poll.ledger:,.0f} of "
                    f"{target:,} after {deadline - spawned:.0f} s"
                )
            time.sleep(0.2)
        tail = total(worker.samples(), "revpulse_ledger_changelog_tail_records")
    except BaseException:
        worker.stop()
        raise
    finally:
        stop.set()
        poller.join()
    log = read_takeover(log_since(worker, offset), settings.facts_topic, settings.changelog_topic())
    assigned = None if log.assigned_at is None else log.assigned_at - spawned_at
    return worker, Takeover(ready - spawned, poll.ledger_at - spawned, tail, poll, assigned)


def changelog_end(settings: Settings) -> int:
    """The ledger-state changelog's true end (Tansu reports its last batch's base + 1)."""
    last = asyncio.run(read_last_batch(settings.kafka_bootstrap, settings.changelog_topic(), 0))
    return last[-1].offset + 1 if last else 0


def log_since(worker: WorkerProcess, offset: int) -> str:
    with worker.child.log_path.open("rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace")


def log_size(worker: WorkerProcess) -> int:
    return worker.child.log_path.stat().st_size


def owner_and_standby(
    workers: tuple[WorkerProcess, WorkerProcess],
    offsets: tuple[int, int],
    count: int,
    timeout_seconds: float,
) -> tuple[WorkerProcess, WorkerProcess, bool]:
    """Once the group settled: (the worker that owns the ledger and holds ``count``, the
    other, whether the other started following the ledger's changelog as a standby since
    ``offsets``).
    Gives the other ``timeout_seconds`` to become a standby, then goes on without."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        samples = [worker.samples() for worker in workers]
        owners = [
            index
            for index, found in enumerate(samples)
            if total(found, "revpulse_ledger_owner") == 1
            and total(found, "revpulse_ledger_events") >= count
        ]
        if len(owners) == 1:
            owner, other = owners[0], 1 - owners[0]
            settings = workers[other].settings
            log = read_takeover(
                log_since(workers[other], offsets[other]),
                settings.facts_topic,
                settings.changelog_topic(),
            )
            if log.standby_started or time.monotonic() > deadline:
                return workers[owner], workers[other], log.standby_started
        elif time.monotonic() > deadline:
            raise BenchError(
                f"no single worker owned the ledger with {count:,} events after "
                f"{timeout_seconds:g} s of two workers in the group"
            )
        time.sleep(POLL_SECONDS)


def top_up(workload: Workload, count: int) -> list[Record]:
    """``count`` more events, after the history: stamped at its end, so none is late."""
    records: list[Record] = []
    while len(records) < count:
        records.extend(workload.live(workload.end))
    return records[:count]


def send_top_up(
    owner: WorkerProcess, records: list[Record], target: int, stall_seconds: float
) -> float:
    """Send ``records`` and wait until the owner's ledger holds ``target``; returns what
    it holds then."""
    producer = Producer(owner.settings.kafka_bootstrap, owner.settings.events_topic)
    producer.start(records)
    producer.join()
    last_change, last = time.monotonic(), -1.0
    while (ledger := total(owner.samples(), "revpulse_ledger_events")) < target:
        if ledger != last:
            last_change, last = time.monotonic(), ledger
        if time.monotonic() - last_change > stall_seconds:
            raise BenchError(
                f"with a standby in the group, the owner's ledger stayed at {ledger:,.0f} "
                f"of {target:,} for {stall_seconds:g} s"
            )
        time.sleep(POLL_SECONDS)
    return ledger


def start_standby(
    overrides: dict[str, Any], log_dir: Path, args: argparse.Namespace, started: list[WorkerProcess]
) -> WorkerProcess:
    """A second worker in the group: its own web port and data directory, its own log."""
    mine = {**overrides, "web_port": free_port()}
    worker = WorkerProcess(
        Settings(**mine), mine, log_dir, args.metrics_timeout, STANDBY_DATA_DIR, name="standby"
    )
    started.append(worker)  # stopped by the caller, however this phase ends
    worker.wait_ready(timeout_seconds=args.timeout + 60)
    return worker


def standby_takeover(
    running: WorkerProcess,
    overrides: dict[str, Any],
    log_dir: Path,
    count: int,
    args: argparse.Namespace,
    workload: Workload,
    started: list[WorkerProcess],
) -> StandbyTakeover:
    """A second worker next to ``running``; once one owns the ledger and the other is its
    standby, a top-up of events is sent, the owner SIGKILLed, and the other timed until
    it holds every event and publishes. Every worker is in ``started``, to be stopped."""
    offsets = (log_size(running), 0)
    standby = start_standby(overrides, log_dir, args, started)
    owner, standby, standby_started = owner_and_standby(
        (running, standby), offsets, count, args.timeout
    )
    say(f"the standby ({'assigned' if standby_started else 'NOT assigned'} standby "
        f"partitions) follows; sending a top-up of events")  # fmt: skip
    settings = standby.settings
    end_before = changelog_end(settings)
    records = top_up(workload, max(100, round(count * TOP_UP_SHARE)))
    target = send_top_up(owner, records, count + len(records), args.timeout)
    written = changelog_end(settings) - end_before
    offset = log_size(standby)
    killed_at, killed = time.time(), time.monotonic()
    owner.child.kill()
    say("SIGKILLed the ledger's owner; the standby takes over")
    poll, stop = Poll(), threading.Event()
    poller = threading.Thread(
        target=poll_metrics,
        args=(settings.web_port, target, args.recovery_poll_timeout, poll, stop),
        daemon=True,
    )
    poller.start()
    try:
        deadline = killed + args.timeout + 60
        while poll.ledger_at is None:
            standby.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(
                    f"the standby's ledger held {poll.ledger:,.0f} of {target:,.0f} "
                    f"{deadline - killed:.0f} s after the kill; see {standby.child.log_path}"
                )
            time.sleep(0.2)
        start_records = total(standby.samples(), TAIL)
    finally:
        stop.set()
        poller.join()
    log = read_takeover(
        log_since(standby, offset), settings.facts_topic, settings.changelog_topic()
    )
    return StandbyTakeover(
        standby_started, start_records, len(records), written, target, log, killed_at,
        poll.ledger_at - killed, poll,
    )  # fmt: skip


def bare_agent(settings: Settings, count: int, log_dir: Path, stall_seconds: float) -> float:
    """Events/s of a bare Faust agent (decode only) reading the events topic from the start;
    raises when its count of events read stays the same for ``stall_seconds``."""
    status = log_dir / "bare-agent.json"
    argv = [
        sys.executable,
        "-m",
        "bench.bare_agent",
        settings.kafka_bootstrap,
        settings.events_topic,
        str(settings.partitions),
        str(count),
        str(status),
        str(log_dir / "bare-agent-data"),
    ]
    child: ChildProcess = spawn("bare-agent", argv, log_dir)
    try:
        read, last_change = -1, time.monotonic()
        while True:
            if child.process.poll() is not None:
                raise BenchError(
                    f"the bare agent exited with code {child.process.returncode}; "
                    f"see {child.log_path}"
                )
            done = read_bare_status(status)
            if done.get("done"):
                break
            if done.get("events", 0) != read:
                read, last_change = done.get("events", 0), time.monotonic()
            elif time.monotonic() - last_change > stall_seconds:
                raise BenchError(
                    f"the bare agent stayed at {max(read, 0):,} of {count:,} events for "
                    f"{stall_seconds:g} s; see {child.log_path}"
                )
            time.sleep(0.2)
    finally:
        child.stop()
    seconds = done["last"] - done["first"]
    return float(done["events"]) / seconds if seconds > 0 else 0.0


def read_bare_status(status: Path) -> dict[str, Any]:
    """The bare agent's last progress report ({} before its first); it replaces the file
    whole (bench.bare_agent), so a read never sees half of one."""
    try:
        found: dict[str, Any] = json.loads(status.read_text())
    except FileNotFoundError:
        return {}
    return found


def records_in_stages(workload: Workload, count: int) -> Iterator[tuple[int, list[Record]]]:
    """(the ledger's target at the stage's end, the stage's records), in event-time order."""
    stream = workload.stream(count)
    sent = 0
    for share in STAGES:
        target = round(count * share)
        records = list(islice(stream, target - sent))
        sent = target
        yield target, records


def stage_line(index: int, stage: Stage, rate: float) -> str:
    share = ("1/4", "1/2", "all")[index]
    return (
        f"  {share:>3} of M  ledger {stage.events:>10,}  RSS {stage.rss_mib:7,.0f} MiB  "
        f"publish compute mean {stage.compute_mean_ms:8,.1f} ms over {stage.publishes:,} "
        f"publishes, max in {stage.compute_max_bucket}  end-to-end {rate:9,.0f} events/s "
        f"({stage.seconds:,.1f} s)  publish compute CPU mean {stage.compute_cpu_mean_ms:,.1f} ms"
        f"  event loop held max in {stage.loop_lag_max_bucket}, {stage.loop_lag_over_bound:,} "
        f"of {stage.loop_lag_samples:,} probes over {LOOP_HELD_SECONDS * 1000:g} ms"
        f"  live state {stage.series:,} series over {stage.bucket_days:,} bucket days"
    )


def run(args: argparse.Namespace, results: Results) -> None:
    count = args.events
    log_dir = Path(tempfile.mkdtemp(prefix="revpulse-scale-"))
    stack = Stack(log_dir)
    succeeded = False
    worker: WorkerProcess | None = None
    standby_phase: list[WorkerProcess] = []  # the workers of the standby phase
    span_days = round(args.years * 365)
    try:
        say(f"starting the embedded broker and Redis (logs in {log_dir})")
        stack.start()
        overrides = bench_overrides(
            stack, argparse.Namespace(partitions=args.partitions, span_days=span_days), log_dir
        )
        del overrides["lateness_seconds"]  # the default: the history comes in time order
        settings = Settings(**overrides)
        asyncio.run(ensure_topics(settings))
        figure(
            f"  worker    default settings: lateness {settings.lateness_seconds // 86400} "
            f"days, publish every {settings.publish_interval_seconds:g} s, "
            f"batches of {settings.batch_max_events}; {settings.partitions} partitions"
        )
        workload = Workload(args.seed, history_end(dt.datetime.now(dt.UTC)), span_days)
        say("starting the revpulse worker")
        worker = WorkerProcess(settings, overrides, log_dir, args.metrics_timeout)
        worker.wait_ready(timeout_seconds=90)
        producer = Producer(settings.kafka_bootstrap, settings.events_topic)
        histogram = publish_times(worker.samples())
        for index, (target, records) in enumerate(records_in_stages(workload, count)):
            produced_before = producer.acknowledged
            stage, histogram = load_stage(
                worker, producer, records, target, histogram, args.timeout
            )
            rate = (producer.acknowledged - produced_before) / stage.seconds
            results.stages.append((stage, rate))
            figure(stage_line(index, stage, rate))
            del records
        samples = worker.samples()
        results.late = total(samples, "revpulse_events_late_total")
        results.duplicates = total(samples, "revpulse_events_duplicate_total")
        figure(f"  counted late {results.late:,.0f}, duplicates {results.duplicates:,.0f}")
        say("SIGKILLed the worker; starting a new one on the same data directory")
        worker, results.same_dir = restart(worker, overrides, log_dir, count, args, DATA_DIR)
        figure(takeover_line(SAME_DIR, results.same_dir))
        say("SIGKILLed it; starting a fresh one with no local state")
        worker, results.fresh = restart(worker, overrides, log_dir, count, args, "fresh-data")
        figure(takeover_line(FRESH, results.fresh))
        say("starting a second worker next to it, to become a standby of the ledger-state table")
        standby_phase.append(worker)
        worker = None
        results.standby = standby_takeover(
            standby_phase[0], overrides, log_dir, count, args, workload, standby_phase
        )
        figure(standby_line(results.standby))
        for each in standby_phase:
            each.stop()
        standby_phase.clear()
        say("the bare Faust agent reads the same topic")
        results.bare_events_per_second = bare_agent(settings, count, log_dir, args.timeout)
        succeeded = True
    finally:
        for each in [*standby_phase, *([worker] if worker is not None else [])]:
            each.stop()
        stack.stop()
        if succeeded and not args.keep_logs:
            shutil.rmtree(log_dir, ignore_errors=True)
        elif not succeeded:
            say(f"logs kept in {log_dir}")


SAME_DIR = "restart on the same data dir"
FRESH = "fresh worker, no local state"


def takeover_line(what: str, takeover: Takeover) -> str:
    poll, assigned = takeover.poll, takeover.assigned_seconds
    after = "" if assigned is None else f" ({takeover.ledger_seconds - assigned:.1f} s after "
    after += "" if assigned is None else f"the ledger was assigned, at {assigned:.1f} s)"
    return (
        f"  {what}: until /readyz {takeover.ready_seconds:.1f} s, until the ledger holds "
        f"all M again {takeover.ledger_seconds:.1f} s{after}, changelog records read "
        f"{takeover.tail_records:,.0f}; /metrics meanwhile: longest answer "
        f"{poll.max_seconds:.2f} s, {poll.timeouts} timeouts of {poll.polls} polls "
        f"(every {RECOVERY_POLL_SECONDS:g} s)"
    )


def standby_line(standby: StandbyTakeover) -> str:
    poll, log = standby.poll, standby.log
    assigned = standby.assigned_seconds
    after = "" if assigned is None else f" ({standby.ledger_seconds - assigned:.1f} s after it)"
    read = "none logged" if log.recovery_records is None else f"{log.recovery_records:,}"
    return (
        f"  standby takeover: standby partitions "
        f"{'assigned' if standby.standby_started else 'NEVER assigned'}, "
        f"{standby.start_records:,.0f} changelog records read at its start, then "
        f"{standby.top_up_events:,} events sent ({standby.written_while_standby:,} changelog "
        f"records); from the owner's SIGKILL: until assigned the ledger "
        f"{'never' if assigned is None else f'{assigned:.1f} s'}, until the ledger holds "
        f"all M + top-up ({standby.ledger_target:,.0f}) again {standby.ledger_seconds:.1f} s"
        f"{after}, changelog records read {read} (+ {log.last_batch_records:,}"
        f" of the last batch); /metrics meanwhile: longest answer {poll.max_seconds:.2f} s, "
        f"{poll.timeouts} timeouts of {poll.polls} polls (every {RECOVERY_POLL_SECONDS:g} s)"
    )


def summary(results: Results, count: int) -> list[str]:
    load_seconds = sum(stage.seconds for stage, _ in results.stages)
    overall = count / load_seconds if load_seconds else 0.0
    bare = results.bare_events_per_second
    return [  # the takeovers' lines were printed as each was measured
        f"  pipeline end-to-end, all stages {overall:,.0f} events/s",
        f"  bare Faust agent (decode only), same topic {bare:,.0f} events/s",
        f"  pipeline / bare Faust agent = {overall / bare if bare else 0.0:.3f}x",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.events < 100 or args.years <= 0 or args.partitions < 1:
        parser.error("--events must be at least 100; --years and --partitions positive")
    given = list(sys.argv[1:] if argv is None else argv)
    machine = machine_info()
    started = time.monotonic()
    figure("revpulse scale benchmark")
    figure(f"  command   {shlex.join(['python', '-m', 'bench.scale', *given])}")
    figure(
        f"  machine   {machine['cores']} cores, {machine['cpu']}, Python {machine['python']}, "
        f"load average {machine['load_average_1m_at_start']} at start"
    )
    figure(
        f"  history   M={args.events:,} events over {args.years:g} years, in event-time "
        f"order (seed {args.seed})"
    )
    results = Results()
    try:
        with children_stopped_on_exit(say):
            run(args, results)
    except KeyboardInterrupt:
        print("scale STOPPED: interrupted; every process it started is stopped", file=sys.stderr)
        return 130
    except (BenchError, RevpulseError, RuntimeError, OSError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"scale FAILED: {reason}", file=sys.stderr)
        return 1
    for line in summary(results, args.events):
        figure(line)
    figure(
        f"  bench took {time.monotonic() - started:.0f} s; load average "
        f"{os.getloadavg()[0]:.2f} at end (other work on the machine lowers every figure)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
