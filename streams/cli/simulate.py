"""``revpulse simulate``."""

from __future__ import annotations

import argparse
import asyncio
import random

from streams.cli.command import Command
from streams.settings import Settings


def run(settings: Settings, args: argparse.Namespace) -> int:
    from streams.devstack.traffic import run_simulation

    return asyncio.run(
        run_simulation(
            settings, args.rate, args.duration, args.count, random.Random(args.seed), args.via
        )
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rate", type=float, default=20.0, help="funnel steps per second")
    parser.add_argument("--duration", type=float, default=None, help="stop after SECONDS")
    parser.add_argument("--count", type=int, default=None, help="stop after N funnel steps")
    parser.add_argument("--seed", type=int, default=None, help="random seed (repeatable)")
    parser.add_argument(
        "--via",
        choices=("kafka", "http"),
        default="kafka",
        help="send to the events topic (default) or as signed webhooks to POST /v1/events "
        "(REVPULSE_INGEST_URL, signed with REVPULSE_INGEST_SECRETS or the secret of "
        "REVPULSE_INGEST_SOURCE)",
    )


COMMAND = Command(
    name="simulate",
    help="send a simulated CRM funnel to the events topic or the HTTP endpoint",
    description="Emit leads by channel and origin, conversions, contracts (1-3 year "
    "terms, set-up fees, renewals, expansions), churn and spend, stamped now.",
    run=run,
    add_arguments=add_arguments,
)
