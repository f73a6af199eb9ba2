"""``revpulse metrics``: the published metrics, for people or as JSON lines."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from decimal import Decimal
from typing import Any

from models.series import MetricPoint
from sinks.codec import point_to_dict
from sinks.redis_keys import RedisKeys
from streams.commands.table import format_amount, render_table
from streams.settings import Settings


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _human(metric: str, value: Decimal | None) -> str:
    if value is None:
        return "undefined"
    if metric.endswith("rate"):
        return f"{value * 100:.2f} %"
    return format_amount(value)


def print_table(points: list[MetricPoint], header_line: str) -> None:
    print(header_line)
    header = ("metric", "window", "origin", "channel", "value")
    rows = [(p.metric, p.window, p.origin, p.channel, _human(p.metric, p.value)) for p in points]
    for line in render_table(header, rows, right=frozenset({4})):
        print(line)


def _as_of_points(settings: Settings, as_of: dt.date) -> list[MetricPoint]:
    from models.series import compute_points
    from streams.readback import read_state

    state = asyncio.run(
        read_state(
            settings.redis_url.get_secret_value(),
            RedisKeys(settings.redis_prefix),
            settings.policy(),
        )
    )
    oldest = as_of - dt.timedelta(days=settings.retention_days)
    print(f"# as of {as_of}: windows ending that day; buckets kept from {oldest}", file=sys.stderr)
    return sorted(
        (p for p in compute_points(state, as_of) if p.value is not None),
        key=lambda p: (p.metric, p.window, p.origin, p.channel),
    )


def run(settings: Settings, args: argparse.Namespace) -> int:
    from streams.readback import read_current

    meta: dict[str, str] = {}
    if args.as_of is not None:
        points = _as_of_points(settings, args.as_of)
        meta = {"clock": args.as_of.isoformat()}
    else:
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
        print("no metrics in Redis yet: is a worker running, and has it seen events?")
        return 1
    print_table(
        points,
        f"metrics clock {meta.get('clock', '?')}   watermark {meta.get('watermark') or '-'}"
        f"   band {meta.get('band') or '-'}   ({settings.reporting_currency})",
    )
    return 0


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "metrics",
        help="print the current metrics from Redis",
        description="Read the published metrics from Redis: a table for people, or --json "
        "with one object per series (metric, window, origin, channel, value, as_of, and "
        "numerator/denominator for a ratio or mean). Undefined values are left out.",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--metric", help="only this metric (e.g. arr, conversion_rate)")
    parser.add_argument("--window", help="only this window (7d, 30d, 90d, 365d, month, ...)")
    parser.add_argument(
        "--as-of",
        type=_date,
        metavar="YYYY-MM-DD",
        help="compute every metric for windows ending that day (within the bucket "
        "retention), and ARR / book ACV on that day; a future day gives contracted ARR",
    )
    parser.set_defaults(handler=run)
