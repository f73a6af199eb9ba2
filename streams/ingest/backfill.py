"""``revpulse replay FILE``: validate a whole NDJSON or CSV file, then send it, in bounded memory.

Two streaming passes over one open file. Pass 1 validates every line and keeps only a
count and the first bad-line reports, never the events. Pass 2 runs only if no line is
bad (or with ``skip_invalid``): it reads the file again and sends it in chunks, to Kafka
directly (acks=all, at most two chunks un-acknowledged) or with ``via="http"`` as signed
NDJSON batches to ``POST /v1/events``. If the file changes between or during the passes
(path, size or modification time), the replay stops with :class:`FileChangedError`.
Memory does not grow with the file.
"""

from __future__ import annotations

import io
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

from tqdm import tqdm

from models.errors import FieldProblem, InvalidEventError, RevpulseError
from models.events import Event, parse_event, parse_event_bytes
from models.ledger import check_currency
from streams.ingest.csv_layouts import CsvHeaderError, column_problems, read_csv_rows
from streams.settings import Settings

MAX_REPORTED_LINES = 20
# events queued to Kafka per chunk; the producer waits for a chunk's acknowledgements
# before queuing the chunk after next, so at most two chunks are in flight
KAFKA_CHUNK_EVENTS = 2000
FileFormat = Literal["ndjson", "csv"]
Via = Literal["kafka", "http"]
BadLines = list[tuple[int, list[FieldProblem]]]
Check = Callable[[Event], None]
# (line number, the event or None, its problems, bytes of the file read so far)
Row = tuple[int, Event | None, list[FieldProblem], int]
SendChunk = Callable[[Sequence[Event]], Awaitable[None]]
OpenSender = Callable[[], AbstractAsyncContextManager[SendChunk]]


class FileChangedError(RevpulseError):
    """The file changed between the validation and the sending, or during either."""


def file_format(path: Path, requested: str | None = None) -> FileFormat:
    if requested == "csv" or (requested is None and path.suffix.lower() == ".csv"):
        return "csv"
    return "ndjson"


def looks_like_csv_header(line: bytes) -> bool:
    """A first line such as ``event_id,type,occurred_at,...``: CSV read as NDJSON."""
    text = line.decode("utf-8", "replace").strip().lstrip("\ufeff")
    return "," in text and not text.startswith(("{", "[")) and "event_id" in text


def _ndjson_rows(handle: BinaryIO, check: Check | None) -> Iterator[Row]:
    read_bytes = 0
    for number, line in enumerate(handle, start=1):
        read_bytes += len(line)
        if not line.strip():
            continue
        try:
            event = parse_event_bytes(line)
            if check is not None:
                check(event)
            yield number, event, [], read_bytes
        except InvalidEventError as error:
            problems = error.problems
            if number == 1 and looks_like_csv_header(line):
                hint = "this looks like a CSV header: for a CSV file, pass --format csv"
                problems = [*problems, FieldProblem("<file>", hint)]
            yield number, None, problems, read_bytes


def _csv_rows(handle: BinaryIO, check: Check | None) -> Iterator[Row]:
    text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")
    try:
        for row in read_csv_rows(text):
            # the wrapper reads ahead in blocks: close enough for a progress bar
            read_bytes = handle.tell()
            if row.raw is None:
                yield row.line, None, row.problems, read_bytes
                continue
            try:
                event = parse_event(row.raw)
                if check is not None:
                    check(event)
                yield row.line, event, [], read_bytes
            except InvalidEventError as error:
                yield row.line, None, column_problems(error), read_bytes
    finally:
        text.detach()  # the caller owns the file


def _rows(handle: BinaryIO, fmt: FileFormat, check: Check | None) -> Iterator[Row]:
    handle.seek(0)
    return _csv_rows(handle, check) if fmt == "csv" else _ndjson_rows(handle, check)


@dataclass(frozen=True)
class FileStamp:
    """What identifies the file's content cheaply: same path target, size and mtime."""

    device: int
    inode: int
    size_bytes: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> FileStamp:
        status = os.stat(path)
        return cls(status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)


@dataclass
class Validation:
    """Pass 1: how many lines are valid and bad, and the first bad lines' problems."""

    events: int = 0
    bad_count: int = 0
    bad: BadLines = field(default_factory=list)  # at most MAX_REPORTED_LINES

    def add_bad(self, number: int, problems: list[FieldProblem]) -> None:
        self.bad_count += 1
        if len(self.bad) < MAX_REPORTED_LINES:
            self.bad.append((number, problems))


@dataclass(frozen=True)
class ReplayOutcome:
    validation: Validation
    sent: int  # events acknowledged; 0 when bad lines stopped the replay
    send_seconds: float


def validate_rows(
    handle: BinaryIO, fmt: FileFormat, check: Check | None, size_bytes: int, progress: bool
) -> Validation:
    """Pass 1: read every line, keep no event. Raises CsvHeaderError for a wrong header."""
    validation = Validation()
    with tqdm(
        total=size_bytes,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc="validate",
        file=sys.stderr,
        disable=not progress,
        mininterval=0.5,
    ) as bar:
        shown = 0
        for number, event, problems, read_bytes in _rows(handle, fmt, check):
            if event is None:
                validation.add_bad(number, problems)
            else:
                validation.events += 1
            bar.update(read_bytes - shown)
            shown = read_bytes
        bar.update(size_bytes - shown)
    return validation


async def send_rows(
    handle: BinaryIO,
    fmt: FileFormat,
    check: Check | None,
    send: SendChunk,
    *,
    chunk_events: int,
    total_events: int,
    progress: bool,
    desc: str,
) -> int:
    """Pass 2: read the file again and send its valid events in chunks; return how many."""
    sent = 0
    chunk: list[Event] = []
    with tqdm(
        total=total_events,
        unit="event",
        desc=desc,
        file=sys.stderr,
        disable=not progress,
        mininterval=0.5,
    ) as bar:
        for _number, event, _problems, _read_bytes in _rows(handle, fmt, check):
            if event is None:
                continue
            chunk.append(event)
            if len(chunk) >= chunk_events:
                await send(chunk)
                sent += len(chunk)
                bar.update(len(chunk))
                chunk = []
        if chunk:
            await send(chunk)
            sent += len(chunk)
            bar.update(len(chunk))
    return sent


def _check_unchanged(path: Path, stamp: FileStamp, when: str, consequence: str) -> None:
    try:
        now: FileStamp | None = FileStamp.of(path)
    except FileNotFoundError:
        now = None
    if now != stamp:
        raise FileChangedError(
            f"{path} changed {when} (size, modification time or identity); {consequence}"
        )


async def replay_stream(
    path: Path,
    fmt: FileFormat,
    check: Check | None,
    open_sender: OpenSender,
    *,
    skip_invalid: bool,
    chunk_events: int,
    progress: bool = True,
    desc: str = "send",
) -> ReplayOutcome:
    """Validate the whole file, report its bad lines, then send it unless a line is bad.

    ``open_sender`` is entered only when there is something to send. Raises
    CsvHeaderError when a CSV header is wrong, and FileChangedError when the file
    changes while it is read (before pass 2: nothing was sent).
    """
    with path.open("rb") as handle:
        stamp = FileStamp.of(path)
        validation = validate_rows(handle, fmt, check, stamp.size_bytes, progress)
        _check_unchanged(path, stamp, "while it was validated", "nothing sent")
        report_bad_lines(path, validation.bad, validation.bad_count)
        if validation.bad_count and not skip_invalid:
            return ReplayOutcome(validation, 0, 0.0)
        started = time.monotonic()
        async with open_sender() as send:
            _check_unchanged(path, stamp, "after it was validated", "nothing sent")
            sent = await send_rows(
                handle,
                fmt,
                check,
                send,
                chunk_events=chunk_events,
                total_events=validation.events,
                progress=progress,
                desc=desc,
            )
        seconds = time.monotonic() - started
        if sent != validation.events:
            raise FileChangedError(
                f"{path} changed while it was sent: {validation.events} events validated, "
                f"{sent} sent"
            )
        _check_unchanged(path, stamp, "while it was sent", f"{sent} events were sent")
    return ReplayOutcome(validation, sent, seconds)


def read_events(
    path: Path, fmt: FileFormat | None = None, check: Check | None = None
) -> tuple[list[Event], BadLines]:
    """Every valid event of a small file, and each bad line's number and problems.

    Holds every event in memory: ``revpulse replay`` streams instead (:func:`replay_stream`).
    Raises CsvHeaderError when a CSV header is wrong (then no row can be read).
    """
    events: list[Event] = []
    bad: BadLines = []
    with path.open("rb") as handle:
        for number, event, problems, _read_bytes in _rows(handle, fmt or file_format(path), check):
            if event is None:
                bad.append((number, problems))
            else:
                events.append(event)
    return events, bad


def report_bad_lines(path: Path, bad: BadLines, bad_count: int | None = None) -> None:
    """Print the first bad lines as ``file:line: field: problem``, then how many more."""
    total = len(bad) if bad_count is None else bad_count
    for number, problems in bad[:MAX_REPORTED_LINES]:
        detail = "; ".join(str(problem) for problem in problems)
        print(f"{path}:{number}: {detail}", file=sys.stderr)
    shown = min(len(bad), MAX_REPORTED_LINES)
    if total > shown:
        print(f"... and {total - shown} more bad lines", file=sys.stderr)


def open_sender(settings: Settings, via: Via, batch_size: int) -> tuple[OpenSender, int]:
    """The sender of ``via`` and its chunk size: HTTP batches, or pipelined Kafka sends."""
    if via == "http":

        @asynccontextmanager
        async def http() -> AsyncIterator[SendChunk]:
            from streams.ingest.client import http_sender

            async with http_sender(settings) as sender:

                async def post(events: Sequence[Event]) -> None:
                    await sender.send(events)

                yield post

        return http, batch_size

    @asynccontextmanager
    async def kafka() -> AsyncIterator[SendChunk]:
        from streams.kafka.producer import event_producer, pipelined_sender

        async with event_producer(settings) as producer, pipelined_sender(producer) as sender:
            yield sender.send_chunk

    return kafka, KAFKA_CHUNK_EVENTS


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
    opener, chunk_events = open_sender(settings, via, batch_size)
    try:
        outcome = await replay_stream(
            path,
            fmt or file_format(path),
            lambda event: check_currency(event, policy),
            opener,
            skip_invalid=skip_invalid,
            chunk_events=chunk_events,
            desc=f"replay via {via}",
        )
    except CsvHeaderError as error:
        report_bad_lines(path, [(1, error.problems)])
        print("revpulse replay: the CSV header is wrong; nothing sent", file=sys.stderr)
        return 1
    except FileChangedError as error:
        print(
            f"revpulse replay: {error}. Replay it once nothing writes to it "
            "(event_id deduplicates what was already sent)",
            file=sys.stderr,
        )
        return 1
    bad_count = outcome.validation.bad_count
    if bad_count and not skip_invalid:
        print(
            f"revpulse replay: {bad_count} invalid line(s); nothing sent "
            "(fix them, or pass --skip-invalid to send the valid ones)",
            file=sys.stderr,
        )
        return 1
    target = settings.events_topic if via == "kafka" else "POST /v1/events"
    seconds = outcome.send_seconds
    rate = outcome.sent / seconds if seconds > 0 else 0.0
    print(
        f"sent {outcome.sent} events to {target} in {seconds:.1f} s ({rate:,.0f} events/s)"
        + (f" (skipped {bad_count} invalid)" if bad_count else ""),
        file=sys.stderr,
    )
    return 0
