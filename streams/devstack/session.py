"""``revpulse dev``: the embedded stack, a worker and (with --demo) simulated traffic.

Every child is supervised: one that exits is started again after a backoff (see
streams/devstack/supervision.py), and the others keep running.
README.md, "Two commands", shows it; docs/cli.md lists its options.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sinks.errors import SinkUnavailableError
from sinks.readback import read_current
from sinks.redis_keys import RedisKeys
from streams.devstack.stack import (
    ChildProcess,
    ensure_port_free,
    free_port,
    spawn,
    start_broker,
    start_redis,
    wait_for_page,
)
from streams.devstack.status import status_line
from streams.devstack.supervision import Backoff
from streams.errors import StackError
from streams.kafka.topics import ensure_topics
from streams.settings import Settings

DEFAULT_REDIS_PREFIX = "revpulse"


def _revpulse_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "streams.cli", *args]


def _stop_on_sigterm(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')}  revpulse dev: {message}", flush=True)


@dataclass
class Supervised:
    """One child ``revpulse dev`` keeps running, and how it is started."""

    name: str
    start: Callable[[], ChildProcess]
    backoff: Backoff = field(default_factory=Backoff)
    child: ChildProcess | None = None
    started_monotonic: float = 0.0
    started_wall: str = ""
    restart_at: float | None = None  # monotonic time of the next start while it is down
    held: bool = False  # down on purpose, until the broker it needs is back

    def launch(self) -> ChildProcess:
        self.child = self.start()
        self.started_monotonic = time.monotonic()
        self.started_wall = time.strftime("%H:%M:%S")
        self.restart_at = None
        self.held = False
        return self.child

    def halt(self, *, kill: bool = False) -> None:
        """Stop it on purpose (not counted as a crash); ``kill``: SIGKILL, no clean exit."""
        if self.child is not None:
            if kill:
                self.child.kill()
            else:
                self.child.stop()
            self.child = None


class DevStack:
    """The broker, Redis, the worker and the simulator, each restarted when it exits."""

    def __init__(
        self,
        settings: Settings,
        args: argparse.Namespace,
        run_dir: Path,
        ports: tuple[int, int, int],
        env: dict[str, str],
    ) -> None:
        self.settings = settings
        self.run_dir = run_dir
        self.kafka_port, self.redis_port, self.web_port = ports
        self.env = env
        self.broker = Supervised("broker", self._start_broker)
        self.redis = Supervised("redis", lambda: start_redis(self.redis_port, run_dir))
        self.worker = Supervised(
            "worker", lambda: spawn("worker", _revpulse_argv("worker"), run_dir, env)
        )
        simulate = _revpulse_argv("simulate", "--rate", str(args.rate))
        self.simulator = Supervised("simulator", lambda: spawn("simulator", simulate, run_dir, env))
        self.units = [self.broker, self.redis, self.worker]
        if args.demo:
            self.units.append(self.simulator)

    def _start_broker(self) -> ChildProcess:
        child = start_broker(self.kafka_port, self.run_dir)
        bootstrap = {"kafka_bootstrap": self.env["REVPULSE_KAFKA_BOOTSTRAP"]}
        try:
            asyncio.run(ensure_topics(self.settings.model_copy(update=bootstrap)))
        except Exception as error:
            child.stop()
            raise StackError(f"could not create the topics: {error}") from error
        return child

    def start(self) -> None:
        """Start everything in order; the first worker must listen before dev goes on."""
        for unit in self.units:
            child = unit.launch()
            self.write_pids()
            if unit is self.worker:
                wait_for_page(self.web_port, "/openapi.json", 60, child.process)

    def write_pids(self) -> None:
        """``pids.json`` in the run directory: which process is which, right now."""
        pids = {"dev": os.getpid()}
        pids.update({u.name: u.child.process.pid for u in self.units if u.child is not None})
        path = self.run_dir / "pids.json"
        path.with_suffix(".tmp").write_text(json.dumps(pids))
        path.with_suffix(".tmp").replace(path)

    def supervise(self) -> None:
        """Notice exits and start again what is due; called about twice a second."""
        for unit in self.units:
            now = time.monotonic()
            if unit.child is not None:
                code = unit.child.process.poll()
                if code is None:
                    continue
                log_path = unit.child.log_path
                unit.child.stop()  # closes its log
                unit.child = None
                self._exited(unit, code, now, log_path)
            elif not unit.held and unit.restart_at is not None and now >= unit.restart_at:
                self._restart(unit, now)

    def _exited(self, unit: Supervised, code: int, now: float, log_path: Path) -> None:
        delay = unit.backoff.next_delay_seconds(now - unit.started_monotonic)
        unit.restart_at = now + delay
        again = f"in {delay:g} s (restart {unit.backoff.restarts})"
        if unit is self.broker:
            say(
                f"the embedded broker exited with code {code}: it keeps data in memory only, "
                f"so every event sent since it started at {unit.started_wall} is gone, and the "
                f"worker's ledger with it. Restarting it EMPTY on port {self.kafka_port} {again}, "
                "then the topics and the worker; Redis keeps the old figures until the new "
                "worker's first publish replaces them"
            )
            for dependent in (self.worker, self.simulator):
                # what they hold refers to the lost broker, and they cannot stop cleanly
                # without it: kill them, and start them afresh once it is back
                dependent.halt(kill=True)
                dependent.held = True
            self.write_pids()
        elif unit is self.redis:
            say(
                f"redis exited with code {code}; restarting it on port {self.redis_port} "
                f"{again}. It keeps nothing on disk, so the figures and state in Redis are "
                "gone until the worker republishes everything, which it does when it sees the "
                "new server"
            )
        else:
            say(f"{unit.name} exited with code {code}; restarting {again}; see {log_path}")

    def _restart(self, unit: Supervised, now: float) -> None:
        try:
            child = unit.launch()
        except (StackError, OSError) as error:
            delay = unit.backoff.next_delay_seconds(0.0)
            unit.restart_at = now + delay
            say(f"could not start the {unit.name}: {error}; trying again in {delay:g} s")
            return
        say(f"{unit.name} started again (pid {child.process.pid})")
        self.write_pids()
        if unit is self.broker:
            for dependent in (self.worker, self.simulator):
                if dependent.held:
                    dependent.held = False
                    dependent.restart_at = now

    def down(self) -> list[str]:
        """What is not running, for the status line."""
        notes = []
        for unit in self.units:
            if unit.child is not None:
                continue
            if unit.held:
                notes.append(f"{unit.name} waits for the broker")
            elif unit.restart_at is not None:
                wait = max(0.0, unit.restart_at - time.monotonic())
                notes.append(f"{unit.name} down, restart {unit.backoff.restarts} in {wait:.0f} s")
        return notes

    def stop(self) -> None:
        """The simulator, the worker, Redis, then the broker."""
        stopped = []
        for unit in reversed(self.units):
            if unit.child is not None:
                unit.halt()
                stopped.append(unit.name)
        if stopped:
            print("revpulse dev: stopped " + ", ".join(stopped), flush=True)


def run_dev(settings: Settings, args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    run_dir = settings.data_dir / "dev" / time.strftime("%Y%m%d-%H%M%S")
    kafka_port = args.kafka_port or free_port()
    redis_port = args.redis_port or free_port()
    web_port = args.web_port or settings.web_port
    ensure_port_free(web_port, "worker's web server", "--web-port PORT")
    if args.kafka_port:
        ensure_port_free(kafka_port, "broker", "--kafka-port PORT")
    if args.redis_port:
        ensure_port_free(redis_port, "Redis server", "--redis-port PORT")
    env = dict(os.environ)
    env.update(
        REVPULSE_KAFKA_BOOTSTRAP=f"127.0.0.1:{kafka_port}",
        REVPULSE_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        REVPULSE_WEB_PORT=str(web_port),
        REVPULSE_DATA_DIR=str(run_dir),
    )
    insecure = not settings.ingest_secrets and not settings.ingest_source_secrets
    if insecure:
        env["REVPULSE_INSECURE_DEV_MODE"] = "true"
    run_dir.mkdir(parents=True, exist_ok=True)
    stack = DevStack(settings, args, run_dir, (kafka_port, redis_port, web_port), env)
    try:
        print(f"revpulse dev: logs in {run_dir}", flush=True)
        if insecure:
            print(
                "revpulse dev: no REVPULSE_INGEST_SECRETS set, so the worker runs with "
                "REVPULSE_INSECURE_DEV_MODE=true: POST /v1/events accepts UNSIGNED requests "
                "(local development only)",
                flush=True,
            )
        stack.start()
        _banner(settings, stack, args.demo, insecure)
        redis_url = env["REVPULSE_REDIS_URL"]
        next_status = time.monotonic() + args.status_every
        while True:
            stack.supervise()
            if args.status_every > 0 and time.monotonic() >= next_status:
                next_status += args.status_every
                _print_status(settings, redis_url, stack.down())
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nrevpulse dev: stopping ...", flush=True)
        return 0
    finally:
        # a second Ctrl-C or SIGTERM must not leave children half-stopped
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()


def _print_status(settings: Settings, redis_url: str, down: list[str]) -> None:
    prefix = "".join(f"{note} | " for note in down)
    try:
        points, meta = asyncio.run(read_current(redis_url, RedisKeys(settings.redis_prefix)))
    except SinkUnavailableError as error:
        print(f"{time.strftime('%H:%M:%S')}  {prefix}cannot read the metrics: {error}", flush=True)
        return
    line = status_line(points, meta, settings.reporting_currency)
    print(f"{time.strftime('%H:%M:%S')}  {prefix}{line}", flush=True)


def export_line(settings: Settings, kafka_bootstrap: str, redis_url: str, web_url: str) -> str:
    """One line to paste into another terminal so every client command finds this stack.

    ``metrics`` and ``dlq`` read Redis and Kafka; ``replay``/``simulate``/``dlq --resubmit``
    with ``--via http`` post to this worker's web port, not the default one. Secrets are not
    printed: with REVPULSE_INGEST_SECRETS set, the other terminal needs it too.
    """
    names = [
        f"REVPULSE_KAFKA_BOOTSTRAP={kafka_bootstrap}",
        f"REVPULSE_REDIS_URL={redis_url}",
        f"REVPULSE_INGEST_URL={web_url}/v1/events",
    ]
    if settings.redis_prefix != DEFAULT_REDIS_PREFIX:
        names.append(f"REVPULSE_REDIS_PREFIX={settings.redis_prefix}")
    return "export " + " ".join(names)


def _banner(settings: Settings, stack: DevStack, demo: bool, insecure: bool) -> None:
    redis_url = f"redis://127.0.0.1:{stack.redis_port}/0"
    kafka = f"127.0.0.1:{stack.kafka_port}"
    web = f"http://127.0.0.1:{stack.web_port}"
    keys = RedisKeys(settings.redis_prefix)
    lines = [
        "",
        "revpulse is running" + (" with demo traffic" if demo else ""),
        f"  Prometheus metrics  {web}/metrics",
        f"  health              {web}/readyz",
        f"  ingest (POST)       {web}/v1/events"
        + ("   INSECURE DEV MODE: unsigned requests accepted" if insecure else "   (signed)"),
        f"  API document        {web}/openapi.json",
        f"  Redis               REVPULSE_REDIS_URL={redis_url}   (hash {keys.current})",
        f"  Kafka               REVPULSE_KAFKA_BOOTSTRAP={kafka}   "
        f"(topic {settings.events_topic}; in memory only)",
        f"  logs                {stack.run_dir}/   (pids.json: the children's process ids)",
        "",
        "  in another terminal, for revpulse metrics / dlq / replay / simulate:",
        f"    {export_line(settings, kafka, redis_url, web)}",
        "  a child that exits is started again (the broker empty: it keeps no data)",
        "  stop:               Ctrl-C",
        "",
    ]
    print("\n".join(lines), flush=True)
