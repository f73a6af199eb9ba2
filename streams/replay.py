"""``revpulse replay FILE``: validate a whole NDJSON file, then send it with a progress bar."""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm

from models.errors import FieldProblem, InvalidEventError
from models.events import Event, parse_event_bytes
from streams.producer import event_producer
from streams.settings import Settings

MAX_REPORTED_LINES = 20


def read_events(path: Path) -> tuple[list[Event], list[tuple[int, list[FieldProblem]]]]:
    """Every valid event of the file, and for each bad line its number and problems."""
    events: list[Event] = []
    bad: list[tuple[int, list[FieldProblem]]] = []
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                events.append(parse_event_bytes(line))
            except InvalidEventError as error:
                bad.append((number, error.problems))
    return events, bad


async def replay_file(settings: Settings, path: Path, *, skip_invalid: bool) -> int:
    if not path.is_file():
        print(f"revpulse replay: no such file: {path}", file=sys.stderr)
        return 2
    events, bad = read_events(path)
    for number, problems in bad[:MAX_REPORTED_LINES]:
        detail = "; ".join(str(problem) for problem in problems)
        print(f"{path}:{number}: {detail}", file=sys.stderr)
    if len(bad) > MAX_REPORTED_LINES:
        print(f"... and {len(bad) - MAX_REPORTED_LINES} more bad lines", file=sys.stderr)
    if bad and not skip_invalid:
        print(
            f"revpulse replay: {len(bad)} invalid line(s); nothing sent "
            "(fix them, or pass --skip-invalid to send the valid ones)",
            file=sys.stderr,
        )
        return 1
    async with event_producer(settings) as producer:
        with tqdm(total=len(events), unit="event", desc="replay", file=sys.stderr) as bar:
            for event in events:
                await producer.send(event)
                bar.update(1)
            await producer.flush()
    print(
        f"sent {len(events)} events to {settings.events_topic}"
        + (f" (skipped {len(bad)} invalid)" if bad else ""),
        file=sys.stderr,
    )
    return 0
