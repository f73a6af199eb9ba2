"""``revpulse simulate``."""

from __future__ import annotations

import argparse
import asyncio
import random
from typing import Any

from streams.settings import Settings


def run(settings: Settings, args: argparse.Namespace) -> int:
    from streams.simulate import run_simulation

    return asyncio.run(
        run_simulation(settings, args.rate, args.duration, args.count, random.Random(args.seed))
    )


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "simulate",
        help="send a simulated CRM funnel to the events topic",
        description="Emit leads by channel and origin, conversions, contracts (1-3 year "
        "terms, set-up fees, renewals, expansions), churn and spend, stamped now.",
    )
    parser.add_argument("--rate", type=float, default=20.0, help="funnel steps per second")
    parser.add_argument("--duration", type=float, default=None, help="stop after SECONDS")
    parser.add_argument("--count", type=int, default=None, help="stop after N funnel steps")
    parser.add_argument("--seed", type=int, default=None, help="random seed (repeatable)")
    parser.set_defaults(handler=run)
