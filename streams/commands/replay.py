"""``revpulse replay FILE``."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from streams.settings import Settings


def run(settings: Settings, args: argparse.Namespace) -> int:
    from streams.replay import replay_file

    return asyncio.run(replay_file(settings, Path(args.file), skip_invalid=args.skip_invalid))


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "replay",
        help="send an NDJSON file of events to the events topic",
        description="Validate every line of FILE (one JSON event per line), then send them "
        "to Kafka with acks=all, with a progress bar. Nothing is sent if a line is bad, "
        "unless --skip-invalid. Safe to run twice: event_id deduplicates.",
    )
    parser.add_argument("file", help="NDJSON file, one event per line")
    parser.add_argument(
        "--skip-invalid", action="store_true", help="send the valid lines even if some are bad"
    )
    parser.set_defaults(handler=run)
