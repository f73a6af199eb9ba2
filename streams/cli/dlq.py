"""``revpulse dlq``: list recent dead letters, export them to fix, re-submit the fixed ones."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from streams.cli.command import Command
from streams.settings import Settings


def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.resubmit is not None:
        from streams.ingest.backfill import replay_file

        print(f"re-submitting the fixed events of {args.resubmit}", file=sys.stderr)
        return asyncio.run(
            replay_file(settings, Path(args.resubmit), skip_invalid=args.skip_invalid, via=args.via)
        )
    from streams.kafka.dead_letters import read_dead_letters

    letters = asyncio.run(read_dead_letters(settings, args.limit))
    if args.export is not None:
        with Path(args.export).open("w", encoding="utf-8") as handle:
            for letter in reversed(letters):  # in arrival order, for a resubmission
                handle.write(letter.payload_line() + "\n")
        print(
            f"wrote {len(letters)} dead-letter payloads to {args.export}; fix them, then "
            f"`revpulse dlq --resubmit {args.export}`",
            file=sys.stderr,
        )
        return 0
    if args.json:
        for letter in letters:
            print(json.dumps(letter.as_dict(), sort_keys=True))
        return 0
    if not letters:
        print(f"no dead letters on {settings.dead_letter_topic}")
        return 0
    print(f"{len(letters)} most recent dead letters on {settings.dead_letter_topic}, newest first:")
    for letter in letters:
        at = letter.as_dict()["at"][:19]
        print(f"{at}  {letter.source()}  {letter.reason}")
        print(f"    {letter.excerpt()}")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, default=20, help="how many recent letters (20)")
    parser.add_argument("--json", action="store_true", help="one JSON object per letter")
    parser.add_argument("--export", metavar="FILE", help="write the payloads to FILE (NDJSON)")
    parser.add_argument(
        "--resubmit", metavar="FILE", help="validate and send the fixed events of FILE"
    )
    parser.add_argument(
        "--skip-invalid", action="store_true", help="with --resubmit: send the valid lines"
    )
    parser.add_argument(
        "--via",
        choices=("kafka", "http"),
        default="kafka",
        help="with --resubmit: send to Kafka (default) or the signed HTTP endpoint",
    )


COMMAND = Command(
    name="dlq",
    help="list recent dead letters; export them to fix; re-submit fixed events",
    description="Read the dead-letter topic (REVPULSE_DEAD_LETTER_TOPIC): each rejected "
    "message with its reason and the partition and offset it came from. --export FILE "
    "writes their payloads one per line; fix the file, then --resubmit FILE validates "
    "and sends it like `revpulse replay` (event_id deduplicates, so resubmitting twice "
    "is safe).",
    run=run,
    add_arguments=add_arguments,
)
