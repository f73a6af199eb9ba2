"""CSV backfill files: one column layout per event type, same events as NDJSON."""

from __future__ import annotations

import datetime as dt
import io
import json
import random
from pathlib import Path
from typing import Any

import pytest

from models.events import EVENT_TYPES, event_to_json, parse_event
from streams.devstack.simulator import FunnelSimulator
from streams.ingest.backfill import read_events
from streams.ingest.csv_layouts import (
    LAYOUTS,
    CsvHeaderError,
    layout_header,
    read_csv_rows,
    write_csv,
)

INGESTION_DOC = (Path(__file__).parents[2] / "docs" / "ingestion.md").read_text()


def rows(text: str) -> list[Any]:
    return list(read_csv_rows(io.StringIO(text)))


def simulated(count_steps: int, seed: int = 7) -> list[dict[str, Any]]:
    simulator = FunnelSimulator(random.Random(seed))
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    events = []
    for step in range(count_steps):
        events.extend(simulator.step(start + dt.timedelta(minutes=7 * step)))
    return events


def test_layouts_follow_the_contract() -> None:
    assert LAYOUTS["lead.created"] == (
        "lead_id",
        "channel",
        "origin",
        "campaign",
        "estimated_value",
    )
    assert LAYOUTS["spend.recorded"] == ("channel", "amount", "currency")
    assert set(LAYOUTS) == set(EVENT_TYPES)


@pytest.mark.parametrize("kind", [*EVENT_TYPES, None])
def test_every_layout_is_documented(kind: str | None) -> None:
    assert ",".join(layout_header(kind)) in INGESTION_DOC


def test_mixed_file_with_type_column() -> None:
    text = (
        "event_id,type,occurred_at,source,lead_id,channel,origin,amount,currency\n"
        "e1,lead.created,2026-03-01T12:00:00Z,crm,L1,Organic,marketing,,\n"
        "e2,spend.recorded,2026-03-01T12:00:00Z,,,organic,,12.50,USD\n"
    )
    found = [parse_event(row.raw) for row in rows(text)]
    assert [event.type for event in found] == ["lead.created", "spend.recorded"]
    assert found[0].data.channel == "organic"  # type: ignore[union-attr]
    assert found[0].source == "crm" and found[1].source is None
    assert str(found[1].data.amount) == "12.50"  # type: ignore[union-attr]


def test_single_type_file_without_type_column() -> None:
    header = ",".join(layout_header("lead.converted"))
    text = f"{header}\ne1,2026-03-01T12:00:00Z,,L1,A1\n"
    (row,) = rows(text)
    event = parse_event(row.raw)
    assert event.type == "lead.converted" and event.data.account_id == "A1"  # type: ignore[union-attr]


def test_cells_outside_the_row_type_are_reported() -> None:
    text = (
        "event_id,type,occurred_at,lead_id,channel,origin,amount,currency\n"
        "e1,lead.created,2026-03-01T12:00:00Z,L1,organic,marketing,5,\n"
    )
    (row,) = rows(text)
    assert row.raw is None and row.line == 2
    assert [p.field for p in row.problems] == ["amount"]


def test_line_numbers_count_quoted_newlines() -> None:
    text = (
        "event_id,type,occurred_at,lead_id,channel,origin,campaign\n"
        'e1,lead.created,2026-03-01T12:00:00Z,L1,organic,marketing,"two\nlines"\n'
        "\n"
        "e2,lead.created,2026-03-01T12:00:00Z,L2,organic,marketing\n"
    )
    found = rows(text)
    assert [row.line for row in found] == [2, 5]
    assert found[1].problems[0].field == "<row>"  # 6 cells instead of 7


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("", "the file is empty"),
        ("event_id,type,lead_id", "missing column 'occurred_at'"),
        ("event_id,type,occurred_at,colour", "unknown column 'colour'"),
        ("event_id,type,occurred_at,lead_id,lead_id", "twice"),
        ("event_id,occurred_at,lead_id,amount", "exactly one type's layout"),
    ],
)
def test_header_errors(header: str, message: str) -> None:
    with pytest.raises(CsvHeaderError, match=message):
        rows(header + "\n" if header else "")


def test_bad_rows_are_reported_by_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text(
        ",".join(layout_header("contract.signed")) + "\n"
        "c1,2026-03-01T12:00:00Z,,C1,A1,,,,new,2026-03-01,twelve,1000,0,USD\n"
        "c2,2026-03-01T12:00:00Z,,C2,A2,,,,new,2026-03-01,12,1000,0,USD\n"
    )
    events, bad = read_events(path)
    assert [e.event_id for e in events] == ["c2"]
    assert bad[0][0] == 2 and bad[0][1][0].field == "term_months"


def test_csv_gives_the_same_events_as_ndjson(tmp_path: Path) -> None:
    raw = simulated(1500)
    ndjson = tmp_path / "events.ndjson"
    ndjson.write_text("".join(json.dumps(event) + "\n" for event in raw))
    csv_path = tmp_path / "events.csv"
    with csv_path.open("w", newline="") as handle:
        assert write_csv(raw, handle) == len(raw)
    from_ndjson, bad_ndjson = read_events(ndjson)
    from_csv, bad_csv = read_events(csv_path)
    assert bad_ndjson == [] and bad_csv == []
    assert len(from_csv) == len(raw) > 2000
    assert {event.type for event in from_csv} == set(EVENT_TYPES)
    assert [event_to_json(e) for e in from_csv] == [event_to_json(e) for e in from_ndjson]


def test_a_csv_file_read_as_ndjson_gets_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "export.txt"  # no .csv suffix: read as NDJSON
    path.write_text("event_id,type,occurred_at,lead_id\ne1,lead.created,2026-01-01T00:00:00Z,l1\n")
    _events, bad = read_events(path)
    first_line_problems = [str(problem) for problem in dict(bad)[1]]
    assert "<file>: this looks like a CSV header: for a CSV file, pass --format csv" in (
        first_line_problems
    )
    assert all("CSV" not in str(problem) for problem in dict(bad)[2])
