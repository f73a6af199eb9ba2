"""``revpulse metrics``: the published metrics, for people or as JSON lines."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import difflib
import json
import sys
from decimal import Decimal

from models.catalogue import BY_NAME
from models.errors import OutOfReachError
from models.series import MetricPoint
from sinks.codec import point_to_dict
from sinks.redis_keys import RedisKeys
from streams.cli.command import Command
from streams.settings import Settings
from streams.table import format_amount, render_table

NOTHING_PUBLISHED = "no metrics in Redis yet: is a worker running, and has it seen events?"


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _metric_name(text: str) -> str:
    if text in BY_NAME:
        return text
    close = difflib.get_close_matches(text, BY_NAME, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise argparse.ArgumentTypeError(
        f"unknown metric {text!r}{hint} (see docs/metrics.md, 'Catalogue')"
    )


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


def published_window_days(points: list[MetricPoint]) -> tuple[int, ...]:
    """The rolling windows a worker published (``30d`` -> 30), smallest first."""
    days = {int(p.window[:-1]) for p in points if p.window[:-1].isdigit() and p.window[-1] == "d"}
    return tuple(sorted(days))


def first_kept_day(meta: dict[str, str], retention_days: int) -> dt.date | None:
    """The first day whose buckets the worker still keeps: it prunes relative to its clock."""
    clock = meta.get("clock")
    if not clock:
        return None
    return dt.datetime.fromisoformat(clock).date() - dt.timedelta(days=retention_days)


def why_empty(
    published: list[MetricPoint], metric: str | None, window: str | None, as_of: dt.date | None
) -> str:
    """What to tell a user whose filters matched no defined value."""
    if not published:
        return NOTHING_PUBLISHED
    windows = sorted({p.window for p in published})
    if window is not None and window not in windows:
        return f"no window {window!r} is published; published windows: {', '.join(windows)}"
    day = f" on {as_of}" if as_of is not None else ""
    what = metric or "any metric"
    where = f" over {window}" if window else ""
    return f"{what}{where} is undefined{day} (a zero denominator: nothing to divide by yet)"


def _as_of_points(
    settings: Settings, as_of: dt.date, current: list[MetricPoint], meta: dict[str, str]
) -> list[MetricPoint]:
    """Every point as of ``as_of`` (undefined ones too). Raises OutOfReachError for a day
    or window the stored copy cannot answer exactly: the days it answers are the ones it
    records, from the worker's settings; a copy that records none (an earlier release's)
    is judged by this command's REVPULSE_RETENTION_DAYS."""
    from sinks.readback import answer_as_of

    policy = settings.policy()
    if window_days := published_window_days(current):
        policy = dataclasses.replace(policy, window_days=window_days)
    points, reach = asyncio.run(
        answer_as_of(
            settings.redis_url.get_secret_value(), RedisKeys(settings.redis_prefix), policy, as_of
        )
    )
    if reach is not None:
        first: dt.date | None = reach.first_as_of
        kept = f"{reach.retention_days} days before its clock {reach.clock_day}"
    else:
        first = first_kept_day(meta, settings.retention_days)
        kept = f"{settings.retention_days} days before its clock {meta.get('clock', '?')[:10]}"
        if first is not None and as_of < first:
            raise OutOfReachError(as_of, first, f"the worker keeps days from {first}")
    if first is not None and as_of - dt.timedelta(days=max(policy.window_days) - 1) < first:
        print(
            f"# the worker keeps daily buckets from {first} ({kept}); windows reaching "
            "before it are left out",
            file=sys.stderr,
        )
    print(f"# as of {as_of}: windows ending that day", file=sys.stderr)
    if first is not None:  # a window that starts before the first kept day is missing data
        points = [p for p in points if not _reaches_before(p.window, as_of, first)]
    return points


def _reaches_before(window: str, as_of: dt.date, first: dt.date) -> bool:
    if window == "month":
        start = as_of.replace(day=1)
    elif window == "quarter":
        start = dt.date(as_of.year, 3 * ((as_of.month - 1) // 3) + 1, 1)
    elif window[:-1].isdigit():
        start = as_of - dt.timedelta(days=int(window[:-1]) - 1)
    else:  # a point-in-time figure (ARR, book ACV): computed from the contract book
        return False
    return start < first


def run(settings: Settings, args: argparse.Namespace) -> int:
    from sinks.readback import read_current

    current, meta = asyncio.run(
        read_current(settings.redis_url.get_secret_value(), RedisKeys(settings.redis_prefix))
    )
    if not current:
        print(NOTHING_PUBLISHED, file=sys.stderr)
        return 1
    points: list[MetricPoint] = current
    if args.as_of is not None:
        try:
            points = _as_of_points(settings, args.as_of, current, meta)
        except OutOfReachError as refused:
            print(refused, file=sys.stderr)
            return 1
        meta = {**meta, "clock": args.as_of.isoformat()}
    selected = [
        p
        for p in points
        if (args.metric is None or p.metric == args.metric)
        and (args.window is None or p.window == args.window)
    ]
    defined = [p for p in selected if p.value is not None]
    if not defined:
        print(why_empty(points, args.metric, args.window, args.as_of), file=sys.stderr)
        return 1
    if args.json:
        for point in defined:
            print(json.dumps(point_to_dict(point), sort_keys=True))
        return 0
    print_table(
        defined,
        f"metrics clock {meta.get('clock', '?')}   watermark {meta.get('watermark') or '-'}"
        f"   band {meta.get('band') or '-'}   ({settings.reporting_currency})",
    )
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument(
        "--metric", type=_metric_name, help="only this metric (e.g. arr, conversion_rate)"
    )
    parser.add_argument("--window", help="only this window (7d, 30d, 90d, 365d, month, ...)")
    parser.add_argument(
        "--as-of",
        type=_date,
        metavar="YYYY-MM-DD",
        help="compute every metric for windows ending that day, over the windows the worker "
        "publishes (a window reaching before the first kept day is left out), and ARR / book "
        "ACV on that day; a future day gives contracted ARR",
    )


COMMAND = Command(
    name="metrics",
    help="print the current metrics from Redis",
    description="Read the published metrics from Redis: a table for people, or --json "
    "with one object per series (metric, window, origin, channel, value, as_of, and "
    "numerator/denominator for a ratio or mean). Undefined values are left out; when "
    "nothing is left, the command says why and exits 1.",
    run=run,
    add_arguments=add_arguments,
)
