"""``revpulse replay FILE``."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from streams.cli.command import Command
from streams.settings import Settings


def run(settings: Settings, args: argparse.Namespace) -> int:
    from streams.ingest.backfill import replay_file

    return asyncio.run(
        replay_file(
            settings,
            Path(args.file),
            skip_invalid=args.skip_invalid,
            via=args.via,
            fmt=args.format,
            batch_size=args.batch_size,
        )
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="NDJSON file (one event per line) or CSV file (.csv)")
    parser.add_argument(
        "--skip-invalid", action="store_true", help="send the valid lines even if some are bad"
    )
    parser.add_argument(
        "--format",
        choices=("ndjson", "csv"),
        default=None,
        help="file format (default: csv for a .csv file, else ndjson)",
    )
    parser.add_argument(
        "--via",
        choices=("kafka", "http"),
        default="kafka",
        help="send to the events topic directly (default) or through the signed HTTP endpoint",
    )
    parser.add_argument(
        "--batch-size",
        type=_positive_int,
        default=1000,
        help="events per HTTP request with --via http (default 1000)",
    )


COMMAND = Command(
    name="replay",
    help="send an NDJSON or CSV file of events (validated first, progress bar)",
    description="Validate every line of FILE (NDJSON: one JSON event per line; CSV: a "
    "header row and one event per row, see docs/ingestion.md, 'CSV layouts'), then read it again "
    "and send the events to Kafka with acks=all, or with --via http as signed batches "
    "to POST /v1/events (REVPULSE_INGEST_URL, default the local worker). Memory stays "
    "flat whatever the file's size: neither pass keeps the events. Bad lines are "
    "reported as file:line: field: problem (the first 20, then how many more), and "
    "nothing is sent unless --skip-invalid. A file that changes between the passes is "
    "refused. Safe to run twice: event_id deduplicates.",
    run=run,
    add_arguments=add_arguments,
)
