"""``revpulse dev``: the embedded stack, a worker and (with --demo) simulated traffic."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from models.errors import SinkUnavailableError, StackError
from sinks.redis_keys import RedisKeys
from streams.dev_status import status_line
from streams.readback import read_current
from streams.settings import Settings
from streams.stack import (
    ChildProcess,
    ensure_port_free,
    free_port,
    spawn,
    start_broker,
    start_redis,
    wait_for_port,
)
from streams.topics import ensure_topics


def _revpulse_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "streams.cli", *args]


def _stop_on_sigterm(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


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
    children: list[ChildProcess] = []
    try:
        print(f"revpulse dev: logs in {run_dir}", flush=True)
        children.append(start_broker(kafka_port, run_dir))
        children.append(start_redis(redis_port, run_dir))
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
            print(
                "revpulse dev: no REVPULSE_INGEST_SECRETS set, so the worker runs with "
                "REVPULSE_INSECURE_DEV_MODE=true: POST /v1/events accepts UNSIGNED requests "
                "(local development only)",
                flush=True,
            )
        child_settings = settings.model_copy(
            update={"kafka_bootstrap": env["REVPULSE_KAFKA_BOOTSTRAP"]}
        )
        asyncio.run(ensure_topics(child_settings))
        worker = spawn("worker", _revpulse_argv("worker"), run_dir, env)
        children.append(worker)
        wait_for_port(web_port, 60, worker.process)
        if args.demo:
            children.append(
                spawn(
                    "simulator", _revpulse_argv("simulate", "--rate", str(args.rate)), run_dir, env
                )
            )
        _banner(kafka_port, redis_port, web_port, run_dir, args.demo, insecure)
        redis_url = env["REVPULSE_REDIS_URL"]
        next_status = time.monotonic() + args.status_every
        while True:
            for child in children:
                if child.process.poll() is not None:
                    raise StackError(
                        f"{child.name} exited with code {child.process.returncode}; "
                        f"see {child.log_path}"
                    )
            if args.status_every > 0 and time.monotonic() >= next_status:
                next_status += args.status_every
                _print_status(settings, redis_url)
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nrevpulse dev: stopping ...", flush=True)
        return 0
    finally:
        for child in reversed(children):
            child.stop()
        if children:
            print("revpulse dev: stopped " + ", ".join(c.name for c in reversed(children)))


def _print_status(settings: Settings, redis_url: str) -> None:
    try:
        points, meta = asyncio.run(read_current(redis_url, RedisKeys(settings.redis_prefix)))
    except SinkUnavailableError as error:
        print(f"revpulse dev: cannot read the metrics: {error}", flush=True)
        return
    line = status_line(points, meta, settings.reporting_currency)
    print(f"{time.strftime('%H:%M:%S')}  {line}", flush=True)


def _banner(
    kafka_port: int, redis_port: int, web_port: int, run_dir: Path, demo: bool, insecure: bool
) -> None:
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    lines = [
        "",
        "revpulse is running" + (" with demo traffic" if demo else ""),
        f"  Prometheus metrics  http://127.0.0.1:{web_port}/metrics",
        f"  health              http://127.0.0.1:{web_port}/readyz",
        f"  ingest (POST)       http://127.0.0.1:{web_port}/v1/events"
        + ("   INSECURE DEV MODE: unsigned requests accepted" if insecure else "   (signed)"),
        f"  API document        http://127.0.0.1:{web_port}/openapi.json",
        f"  Redis               {redis_url}   (hash revpulse:current)",
        f"  Kafka bootstrap     127.0.0.1:{kafka_port}   (topic revpulse-events)",
        f"  logs                {run_dir}/",
        "",
        "  read the metrics:   REVPULSE_REDIS_URL=" + redis_url + " revpulse metrics",
        "  stop:               Ctrl-C",
        "",
    ]
    print("\n".join(lines), flush=True)
