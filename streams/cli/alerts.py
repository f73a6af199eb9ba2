"""``revpulse alerts``: the recent band changes of ACV from marketing leads, from Redis."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sinks.redis_keys import RedisKeys, text
from streams.cli.command import Command
from streams.settings import Settings
from streams.table import format_amount, render_table


@dataclass(frozen=True)
class BandChangeEntry:
    """One entry of the ``<prefix>:alerts`` stream (written by the Redis sink)."""

    entry_id: str
    fields: dict[str, str]

    @property
    def published_at(self) -> dt.datetime:
        """When it was written: the stream entry id is milliseconds since the epoch."""
        milliseconds = int(self.entry_id.split("-", 1)[0])
        return dt.datetime.fromtimestamp(milliseconds / 1000, dt.UTC)

    def as_dict(self) -> dict[str, str]:
        found = {"id": self.entry_id, "published_at": self.published_at.isoformat()}
        found.update(self.fields)
        return found


def entries_from_reply(reply: Iterable[tuple[Any, Any]] | None) -> list[BandChangeEntry]:
    """XREVRANGE's reply (bytes or str) as entries, newest first."""
    return [
        BandChangeEntry(text(entry_id), {text(k): text(v) for k, v in (fields or {}).items()})
        for entry_id, fields in reply or ()
    ]


async def read_band_changes(url: str, keys: RedisKeys, count: int) -> list[BandChangeEntry]:
    """The newest ``count`` band changes, newest first."""
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError

    from sinks.errors import SinkUnavailableError

    client = aioredis.Redis.from_url(url)
    try:
        reply = await client.xrevrange(keys.alerts, count=count)
    except (RedisError, OSError) as error:
        raise SinkUnavailableError("redis", str(error)) from error
    finally:
        await client.aclose()
    return entries_from_reply(reply)


def _money(value: str) -> str:
    try:
        return format_amount(Decimal(value))
    except InvalidOperation:
        return value


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def table_lines(entries: list[BandChangeEntry]) -> list[str]:
    header = ("published (UTC)", "metrics clock", "change", "ACV from marketing leads", "window")
    rows = [
        (
            entry.published_at.strftime("%Y-%m-%d %H:%M:%S"),
            entry.fields.get("clock", "?"),
            f"{entry.fields.get('previous', '?')} -> {entry.fields.get('current', '?')}",
            _money(entry.fields.get("value", "?")),
            entry.fields.get("window", "?"),
        )
        for entry in entries
    ]
    return render_table(header, rows, right=frozenset({3}))


def run(settings: Settings, args: argparse.Namespace) -> int:
    keys = RedisKeys(settings.redis_prefix)
    entries = asyncio.run(
        read_band_changes(settings.redis_url.get_secret_value(), keys, args.count)
    )
    if args.json:
        for entry in entries:
            print(json.dumps(entry.as_dict(), sort_keys=True))
        return 0
    if not entries:
        print(f"no band changes in Redis (stream {keys.alerts}) yet")
        return 0
    print(f"band changes of ACV from marketing leads, newest first ({settings.reporting_currency})")
    for line in table_lines(entries):
        print(line)
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument(
        "--count", type=_positive, default=20, help="how many of the newest changes (default 20)"
    )


COMMAND = Command(
    name="alerts",
    help="show the recent band changes of ACV from marketing leads",
    description="Read the band-change alerts the worker wrote to the Redis stream "
    "<REVPULSE_REDIS_PREFIX>:alerts, newest first: a table for people, or --json with "
    "one object per change (id, published_at, previous, current, value, window, clock). "
    "The same changes are on the Kafka topic REVPULSE_ALERTS_TOPIC.",
    run=run,
    add_arguments=add_arguments,
)
