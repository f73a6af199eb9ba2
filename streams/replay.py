"""``revpulse replay FILE``: validate a whole NDJSON or CSV file, then send it with a progress bar.

Sent to Kafka directly (acks=all), or with ``via="http"`` as signed NDJSON batches to
``POST /v1/events``. Nothing is sent if a line is bad, unless ``skip_invalid``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

from tqdm import tqdm

from models.errors import FieldProblem, InvalidEventError
from models.events import Event, parse_event, parse_event_bytes
from models.ledger import check_currency
from streams.csv_events import CsvHeaderError, column_problems, read_csv_rows
from streams.settings import Settings

MAX_REPORTED_LINES = 20
FileFormat = Literal["ndjson", "csv"]
Via = Literal["kafka", "http"]
BadLines = list[tuple[int, list[FieldProblem]]]


def file_format(path: Path, requested: str | None = None) -> FileFormat:
    if requested == "csv" or (requested is None and path.suffix.lower() == ".csv"):
        return "csv"
    return "ndjson"


def looks_like_csv_header(line: bytes) -> bool:
    """A first line such as ``event_id,type,occurred_at,...``: CSV read as NDJSON."""
    text = line.decode("utf-8", "replace").strip().lstrip("\ufeff")
    return "," in text and not text.startswith(("{", "[")) and "event_id" in text


def _ndjson_events(
    path: Path, check: Callable[[Event], None] | None
) -> Iterator[tuple[int, Event | None, list[FieldProblem]]]:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                event = parse_event_bytes(line)
                if check is not None:
                    check(event)
                yield number, event, []
            except InvalidEventError as error:
                problems = error.problems
                if number == 1 and looks_like_csv_header(line):
                    hint = "this looks like a CSV header: for a CSV file, pass --format csv"
                    problems = [*problems, FieldProblem("<file>", hint)]
                yield number, None, problems


def _csv_events(
    path: Path, check: Callable[[Event], None] | None
) -> Iterator[tuple[int, Event | None, list[FieldProblem]]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for row in read_csv_rows(handle):
            if row.raw is None:
                yield row.line, None, row.problems
                continue
            try:
                event = parse_event(row.raw)
                if check is not None:
                    check(event)
                yield row.line, event, []
            except InvalidEventError as error:
                yield row.line, None, column_problems(error)


def read_events(
    path: Path,
    fmt: FileFormat | None = None,
    check: Callable[[Event], None] | None = None,
    progress: bool = False,
) -> tuple[list[Event], BadLines]:
    """Every valid event of the file, and for each bad line its number and problems.

    Raises CsvHeaderError when a CSV header is wrong (then no row can be read).
    """
    fmt = fmt or file_format(path)
    rows = _csv_events(path, check) if fmt == "csv" else _ndjson_events(path, check)
    events: list[Event] = []
    bad: BadLines = []
    with tqdm(
        unit="line", desc="validate", file=sys.stderr, disable=not progress, mininterval=0.5
    ) as bar:
        for number, event, problems in rows:
            if event is None:
                bad.append((number, problems))
            else:
                events.append(event)
            bar.update(1)
    return events, bad


def report_bad_lines(path: Path, bad: BadLines) -> None:
    for number, problems in bad[:MAX_REPORTED_LINES]:
        detail = "; ".join(str(problem) for problem in problems)
        print(f"{path}:{number}: {detail}", file=sys.stderr)
    if len(bad) > MAX_REPORTED_LINES:
        print(f"... and {len(bad) - MAX_REPORTED_LINES} more bad lines", file=sys.stderr)


async def send_events(
    settings: Settings, events: list[Event], via: Via, batch_size: int, desc: str = "send"
) -> float:
    """Send events with a progress bar (events/s); return the seconds it took."""
    started = time.monotonic()
    with tqdm(total=len(events), unit="event", desc=desc, file=sys.stderr, mininterval=0.5) as bar:
        if via == "http":
            from streams.ingest_client import http_sender

            async with http_sender(settings) as sender:
                for start in range(0, len(events), batch_size):
                    chunk = events[start : start + batch_size]
                    await sender.send(chunk)
                    bar.update(len(chunk))
        else:
            from streams.producer import event_producer

            async with event_producer(settings) as producer:
                for index, event in enumerate(events, start=1):
                    await producer.send(event)
                    if index % batch_size == 0:
                        bar.update(batch_size)
                await producer.flush()
                bar.update(len(events) % batch_size)
    return time.monotonic() - started


async def replay_file(
    settings: Settings,
    path: Path,
    *,
    skip_invalid: bool,
    via: Via = "kafka",
    fmt: FileFormat | None = None,
    batch_size: int = 1000,
) -> int:
    if not path.is_file():
        print(f"revpulse replay: no such file: {path}", file=sys.stderr)
        return 2
    policy = settings.policy()
    try:
        events, bad = read_events(
            path, fmt, lambda event: check_currency(event, policy), progress=True
        )
    except CsvHeaderError as error:
        report_bad_lines(path, [(1, error.problems)])
        print("revpulse replay: the CSV header is wrong; nothing sent", file=sys.stderr)
        return 1
    report_bad_lines(path, bad)
    if bad and not skip_invalid:
        print(
            f"revpulse replay: {len(bad)} invalid line(s); nothing sent "
            "(fix them, or pass --skip-invalid to send the valid ones)",
            file=sys.stderr,
        )
        return 1
    seconds = await send_events(settings, events, via, batch_size, desc=f"replay via {via}")
    target = settings.events_topic if via == "kafka" else "POST /v1/events"
    rate = len(events) / seconds if seconds > 0 else 0.0
    print(
        f"sent {len(events)} events to {target} in {seconds:.1f} s ({rate:,.0f} events/s)"
        + (f" (skipped {len(bad)} invalid)" if bad else ""),
        file=sys.stderr,
    )
    return 0
