"""Peak memory and speed of ``revpulse replay`` on a large NDJSON file, on the embedded broker.

Run ``python -m bench.replay_memory --help``. See bench/README.md, "Replay memory".
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from tqdm import tqdm

from bench.workload import history_end
from streams.devstack.simulator import FunnelSimulator
from streams.devstack.stack import ChildProcess, free_port, start_broker
from streams.kafka.topics import ensure_topics
from streams.settings import Settings

DESCRIPTION = """\
Generate an N-event NDJSON file (seeded FunnelSimulator, occurred_at spread over the
year before today), start the embedded Tansu broker on a free port, run
`revpulse replay FILE` on it as a subprocess, and print the replay process's peak
resident memory (VmHWM, sampled while it runs) and its events/s. Then reads the topic back
and counts the messages (--no-count skips it). Stops the broker and deletes the file
at the end, even on failure (--keep-file keeps the file).
"""
SPAN_DAYS = 365
SAMPLE_SECONDS = 0.1


@dataclass(frozen=True)
class ReplayRun:
    events: int
    file_bytes: int
    wall_seconds: float
    peak_rss_bytes: int
    returncode: int
    summary: str  # the replay's last stderr line: "sent N events to ... (R events/s)"
    on_topic: int


def write_events(path: Path, count: int, seed: int) -> int:
    """Write ``count`` simulated events as NDJSON; return the file size in bytes."""
    simulator = FunnelSimulator(random.Random(seed))
    end = history_end(dt.datetime.now(dt.UTC))
    span = dt.timedelta(days=SPAN_DAYS)
    steps = max(1, round(count / 2.2))  # the simulator emits about 2.2 events per step
    written = 0
    with (
        path.open("w", encoding="utf-8") as handle,
        tqdm(total=count, desc="generate", unit="ev", file=sys.stderr, disable=None) as bar,
    ):
        step = 0
        while written < count:
            at = end - span + span * (min(step, steps - 1) / steps)  # no timedelta overflow
            batch = simulator.step(at)[: count - written]
            handle.write("".join(json.dumps(event) + "\n" for event in batch))
            written += len(batch)
            bar.update(len(batch))
            step += 1
    return path.stat().st_size


def peak_rss_kib(pid: int) -> int | None:
    """VmHWM, the process's own high-water resident set, while it runs (None once gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None  # a zombie: its memory is already released


def run_replay(env: dict[str, str], path: Path, log_path: Path) -> tuple[int, int, float]:
    """Run ``revpulse replay`` and return its exit code, peak RSS in bytes and wall seconds.

    The peak is VmHWM read every SAMPLE_SECONDS: it only grows, so at most the last
    sample interval is missed. (ru_maxrss from wait4 would be wrong here: it counts the
    parent's resident memory at the fork, before the exec.)
    """
    argv = [sys.executable, "-m", "streams.cli", "replay", str(path)]
    started = time.perf_counter()
    peak_kib = 0
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        try:
            while process.poll() is None:
                peak_kib = max(peak_kib, peak_rss_kib(process.pid) or 0)
                time.sleep(SAMPLE_SECONDS)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    return process.returncode, peak_kib * 1024, time.perf_counter() - started


async def messages_on_topic(bootstrap: str, topic: str) -> int:
    """Read the topic from the start and count (Tansu's end offsets are not a count)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        await consumer.seek_to_beginning()
        count = 0
        while batches := await consumer.getmany(timeout_ms=3000, max_records=10_000):
            count += sum(len(records) for records in batches.values())
        return count
    finally:
        await consumer.stop()


def measure(count: int, seed: int, work_dir: Path, keep_file: bool, count_topic: bool) -> ReplayRun:
    path = work_dir / f"replay-{count}.ndjson"
    file_bytes = write_events(path, count, seed)
    port = free_port()
    broker: ChildProcess | None = None
    try:
        broker = start_broker(port, work_dir / "logs")
        tag = uuid.uuid4().hex[:8]
        settings = Settings(kafka_bootstrap=f"127.0.0.1:{port}", app_id=f"replay-bench-{tag}")
        asyncio.run(ensure_topics(settings))
        env = dict(os.environ)
        env["REVPULSE_KAFKA_BOOTSTRAP"] = settings.kafka_bootstrap
        env["REVPULSE_APP_ID"] = settings.app_id
        env["REVPULSE_EVENTS_TOPIC"] = settings.events_topic
        log_path = work_dir / "logs" / "replay.log"
        returncode, peak_rss_bytes, wall_seconds = run_replay(env, path, log_path)
        lines = log_path.read_text(errors="replace").replace("\r", "\n").strip().splitlines()
        if returncode != 0:
            print("\n".join(lines[-20:]), file=sys.stderr)
        on_topic = (
            asyncio.run(messages_on_topic(settings.kafka_bootstrap, settings.events_topic))
            if count_topic
            else -1
        )
        return ReplayRun(
            count,
            file_bytes,
            wall_seconds,
            peak_rss_bytes,
            returncode,
            lines[-1] if lines else "",
            on_topic,
        )
    finally:
        if broker is not None:
            broker.stop()
        if not keep_file:
            path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.replay_memory",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--events", type=int, default=200_000, metavar="N", help="events in the file (200000)"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--dir", type=Path, default=None, help="where to write the file (a temporary directory)"
    )
    parser.add_argument("--keep-file", action="store_true", help="keep the generated file")
    parser.add_argument(
        "--no-count",
        action="store_true",
        help="do not read the topic back to count the messages (saves time on huge files)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="replay-bench-") as scratch:
        work_dir = args.dir or Path(scratch)
        work_dir.mkdir(parents=True, exist_ok=True)
        run = measure(args.events, args.seed, work_dir, args.keep_file, not args.no_count)
    rate = re.search(r"\(([\d,]+) events/s\)", run.summary)
    print(f"events in file        {run.events:,} ({run.file_bytes / 1e6:,.0f} MB)")
    print(f"replay exit code      {run.returncode}")
    print(f"replay wall time      {run.wall_seconds:,.1f} s (both passes, start-up included)")
    print(f"replay send rate      {rate.group(1) if rate else '?'} events/s (as it reported)")
    print(f"overall               {run.events / run.wall_seconds:,.0f} events/s of file")
    print(f"replay peak RSS       {run.peak_rss_bytes / 2**20:,.0f} MiB")
    if run.on_topic >= 0:
        print(f"messages on the topic {run.on_topic:,} (read back)")
    print(f"replay said           {run.summary}")
    ok = run.returncode == 0 and run.on_topic in (-1, run.events)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
