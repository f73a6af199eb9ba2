"""``revpulse replay`` in two streaming passes: validate everything, then send in chunks.

The sender is injected: these tests record what it received (the Kafka and HTTP senders
are exercised against a real broker and worker in tests/integration/test_backfill.py).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from models.events import Event, event_to_json, parse_event
from streams.ingest.backfill import (
    MAX_REPORTED_LINES,
    FileChangedError,
    ReplayOutcome,
    SendChunk,
    read_events,
    replay_file,
    replay_stream,
)
from streams.ingest.csv_layouts import CsvHeaderError, layout_header, write_csv
from streams.settings import Settings
from tests.unit.test_csv_events import simulated


class RecordingSender:
    """An injected sender: keeps every chunk it gets, and whether it was opened."""

    def __init__(self, on_chunk: Any = None) -> None:
        self.chunks: list[list[Event]] = []
        self.opened = 0
        self._on_chunk = on_chunk

    @asynccontextmanager
    async def open(self) -> AsyncIterator[SendChunk]:
        self.opened += 1

        async def send(events: Sequence[Event]) -> None:
            self.chunks.append(list(events))
            if self._on_chunk is not None:
                self._on_chunk(len(self.chunks))

        yield send

    @property
    def events(self) -> list[Event]:
        return [event for chunk in self.chunks for event in chunk]


def replay(
    path: Path,
    sender: RecordingSender,
    *,
    skip_invalid: bool = False,
    chunk_events: int = 100,
    fmt: str = "ndjson",
) -> ReplayOutcome:
    return asyncio.run(
        replay_stream(
            path,
            fmt,  # type: ignore[arg-type]
            None,
            sender.open,
            skip_invalid=skip_invalid,
            chunk_events=chunk_events,
            progress=False,
        )
    )


def write_ndjson(path: Path, raws: list[dict[str, Any]], bad: dict[int, str]) -> list[str]:
    """Write the events, with line ``n`` replaced by ``bad[n]``; return the lines."""
    lines = [json.dumps(raw) for raw in raws]
    for number, text in bad.items():
        lines[number - 1] = text
    path.write_text("".join(line + "\n" for line in lines))
    return lines


def test_a_valid_file_is_sent_whole_in_order_in_chunks(tmp_path: Path) -> None:
    raws = simulated(300)
    path = tmp_path / "events.ndjson"
    write_ndjson(path, raws, {})
    sender = RecordingSender()
    outcome = replay(path, sender, chunk_events=100)
    assert outcome.sent == outcome.validation.events == len(raws)
    assert outcome.validation.bad_count == 0
    assert [event_to_json(e) for e in sender.events] == [
        event_to_json(parse_event(raw)) for raw in raws
    ]
    sizes = [len(chunk) for chunk in sender.chunks]
    assert sizes[:-1] == [100] * (len(sizes) - 1) and 0 < sizes[-1] <= 100


def test_one_bad_line_sends_nothing_and_is_reported_as_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raws = simulated(300)
    path = tmp_path / "events.ndjson"
    # the last line: everything before it is valid and would fit in chunks already
    write_ndjson(path, raws, {len(raws): '{"type": "lead.created", "event_id": "x"}'})
    sender = RecordingSender()
    outcome = replay(path, sender)
    assert sender.opened == 0 and sender.chunks == []
    assert outcome.sent == 0 and outcome.validation.bad_count == 1
    _events, expected = read_events(path)  # the in-memory reader's report
    assert outcome.validation.bad == expected
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith(f"{path}:{len(raws)}: ")
    assert "occurred_at: Field required" in lines[0]
    assert "data: Field required" in lines[0]


def test_skip_invalid_sends_every_valid_line(tmp_path: Path) -> None:
    raws = simulated(100)
    path = tmp_path / "events.ndjson"
    lines = write_ndjson(path, raws, {2: "not json", 50: "{}"})
    sender = RecordingSender()
    outcome = replay(path, sender, skip_invalid=True, chunk_events=7)
    assert outcome.validation.bad_count == 2
    assert [number for number, _ in outcome.validation.bad] == [2, 50]
    expected = [
        event_to_json(parse_event(json.loads(line)))
        for number, line in enumerate(lines, start=1)
        if number not in (2, 50)
    ]
    assert [event_to_json(e) for e in sender.events] == expected
    assert outcome.sent == len(expected)


def test_only_the_first_bad_lines_are_kept_and_all_are_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raws = simulated(200)
    path = tmp_path / "events.ndjson"
    bad_numbers = list(range(3, 3 + 3 * 150, 3))  # 150 bad lines
    write_ndjson(path, raws, dict.fromkeys(bad_numbers, "[]"))
    sender = RecordingSender()
    outcome = replay(path, sender)
    assert outcome.validation.bad_count == 150
    assert [number for number, _ in outcome.validation.bad] == bad_numbers[:MAX_REPORTED_LINES]
    assert sender.chunks == []
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"{path}:3: <event>: an event must be a JSON object"
    assert len(err) == MAX_REPORTED_LINES + 1
    assert err[-1] == f"... and {150 - MAX_REPORTED_LINES} more bad lines"


def test_a_bad_csv_row_sends_nothing_and_names_the_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raws = [raw for raw in simulated(100) if raw["type"] == "lead.created"]
    path = tmp_path / "leads.csv"
    with path.open("w", newline="") as handle:
        write_csv(raws, handle, "lead.created")
    with path.open("a") as handle:
        handle.write("e-bad,2026-03-01T12:00:00Z,,L9,organic,marketing,,minus five\n")
    sender = RecordingSender()
    outcome = replay(path, sender, fmt="csv")
    assert sender.chunks == [] and outcome.validation.events == len(raws)
    bad_line = len(raws) + 2  # the header is line 1
    assert [number for number, _ in outcome.validation.bad] == [bad_line]
    assert capsys.readouterr().err.startswith(f"{path}:{bad_line}: estimated_value: ")
    # and the CSV file's events are those of the NDJSON reader, in order, once fixed
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))
    outcome = replay(path, sender, fmt="csv", chunk_events=9)
    assert [event_to_json(e) for e in sender.events] == [
        event_to_json(parse_event(raw)) for raw in raws
    ]


def test_a_wrong_csv_header_raises_before_anything_is_sent(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("event_id,occurred_at,colour\ne1,2026-01-01T00:00:00Z,red\n")
    sender = RecordingSender()
    with pytest.raises(CsvHeaderError, match="unknown column 'colour'"):
        replay(path, sender, fmt="csv")
    assert sender.opened == 0


def test_a_file_that_grows_while_it_is_sent_is_refused(tmp_path: Path) -> None:
    raws = simulated(200)
    path = tmp_path / "events.ndjson"
    write_ndjson(path, raws, {})
    extra = json.dumps(simulated(1, seed=99)[0]) + "\n"

    def append_once(chunks_sent: int) -> None:
        if chunks_sent == 1:
            with path.open("a") as handle:
                handle.write(extra)

    sender = RecordingSender(on_chunk=append_once)
    with pytest.raises(FileChangedError, match="changed while it was sent"):
        replay(path, sender, chunk_events=50)


def test_a_file_changed_between_the_passes_sends_nothing(tmp_path: Path) -> None:
    raws = simulated(50)
    path = tmp_path / "events.ndjson"
    write_ndjson(path, raws, {})
    sender = RecordingSender()

    @asynccontextmanager
    async def open_after_a_change() -> AsyncIterator[SendChunk]:
        path.write_text(path.read_text() + "{}\n")  # written while the sender connects
        async with sender.open() as send:
            yield send

    with pytest.raises(FileChangedError, match=r"after it was validated.*nothing sent"):
        asyncio.run(
            replay_stream(
                path,
                "ndjson",
                None,
                open_after_a_change,
                skip_invalid=False,
                chunk_events=10,
                progress=False,
            )
        )
    assert sender.chunks == []


def test_blank_lines_are_skipped_and_numbers_count_them(tmp_path: Path) -> None:
    raw = simulated(1)[0]
    path = tmp_path / "events.ndjson"
    path.write_text(f"\n{json.dumps(raw)}\n\n   \n[1]\n")
    sender = RecordingSender()
    outcome = replay(path, sender, skip_invalid=True)
    assert outcome.validation.events == 1 and outcome.sent == 1
    assert outcome.validation.bad == [(5, outcome.validation.bad[0][1])]


def test_the_reader_for_small_files_agrees_with_the_stream(tmp_path: Path) -> None:
    raws = simulated(80)
    path = tmp_path / "events.ndjson"
    write_ndjson(path, raws, {4: "{", 9: '{"type": "nope"}'})
    events, bad = read_events(path)
    sender = RecordingSender()
    outcome = replay(path, sender, skip_invalid=True)
    assert outcome.validation.bad == bad
    assert [event_to_json(e) for e in sender.events] == [event_to_json(e) for e in events]


@pytest.mark.parametrize("kind", ["lead.created", None])
def test_csv_layouts_stream_like_the_reader(tmp_path: Path, kind: str | None) -> None:
    raws = [raw for raw in simulated(60) if kind is None or raw["type"] == kind]
    path = tmp_path / "events.csv"
    with path.open("w", newline="") as handle:
        write_csv(raws, handle, kind)
    assert path.read_text().startswith(",".join(layout_header(kind)))
    events, bad = read_events(path)
    sender = RecordingSender()
    outcome = replay(path, sender, fmt="csv", chunk_events=13)
    assert bad == [] and outcome.validation.bad == []
    assert [event_to_json(e) for e in sender.events] == [event_to_json(e) for e in events]
    assert len(events) == len(raws)


def test_the_command_reports_and_exits_1_without_connecting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raws = simulated(40)
    path = tmp_path / "events.ndjson"
    write_ndjson(path, raws, {7: '{"event_id": "e7", "type": "lead.created"}', 8: "oops"})
    # nothing listens there: a connection attempt would fail the command differently
    settings = Settings(kafka_bootstrap="127.0.0.1:1")
    code = asyncio.run(replay_file(settings, path, skip_invalid=False))
    text = capsys.readouterr().err.replace("\r", "\n")
    err = [line for line in text.splitlines() if line.startswith((str(path), "revpulse"))]
    assert code == 1
    assert "validate: 100%" in text  # the progress bar of pass 1
    assert len(err) == 3
    assert err[0].startswith(f"{path}:7: occurred_at: Field required")
    assert err[1].startswith(f"{path}:8: <body>: not valid JSON")
    assert err[2] == (
        "revpulse replay: 2 invalid line(s); nothing sent "
        "(fix them, or pass --skip-invalid to send the valid ones)"
    )


def test_the_command_refuses_a_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.ndjson"
    assert asyncio.run(replay_file(Settings(), missing, skip_invalid=False)) == 2
    assert capsys.readouterr().err == f"revpulse replay: no such file: {missing}\n"
