"""CSV files of events (docs/ingestion.md, "CSV layouts"): one column layout per event type.

A file starts with a header row. Every file has the columns ``event_id``, ``occurred_at``
and optionally ``source``; then either

* ``type`` and the union of the layouts of the types it holds (a cell outside its row's
  layout must be empty), or
* no ``type`` column and exactly one type's layout: every row is of that type.

An empty cell is an absent field. Values are read as the JSON contract reads strings:
money as exact decimals, dates as ``YYYY-MM-DD``. Pure: works on lines of text.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

from pydantic import BaseModel

from models.errors import FieldProblem, InvalidEventError
from models.events import (
    EVENT_TYPES,
    ContractSignedData,
    CustomerChurnedData,
    LeadConvertedData,
    LeadCreatedData,
    SpendRecordedData,
)

ENVELOPE_COLUMNS = ("event_id", "type", "occurred_at", "source")
REQUIRED_COLUMNS = ("event_id", "occurred_at")
_DATA_MODELS: dict[str, type[BaseModel]] = {
    "lead.created": LeadCreatedData,
    "lead.converted": LeadConvertedData,
    "contract.signed": ContractSignedData,
    "customer.churned": CustomerChurnedData,
    "spend.recorded": SpendRecordedData,
}
# the data columns of each type, in the order of the contract (docs/ingestion.md, "CSV layouts")
LAYOUTS: dict[str, tuple[str, ...]] = {
    kind: tuple(model.model_fields) for kind, model in _DATA_MODELS.items()
}
ALL_DATA_COLUMNS: tuple[str, ...] = tuple(
    dict.fromkeys(column for kind in EVENT_TYPES for column in LAYOUTS[kind])
)


def layout_header(kind: str | None = None) -> list[str]:
    """The header of a file of one type (no ``type`` column), or of all types."""
    if kind is None:
        return [*ENVELOPE_COLUMNS, *ALL_DATA_COLUMNS]
    return ["event_id", "occurred_at", "source", *LAYOUTS[kind]]


class CsvHeaderError(InvalidEventError):
    """The header row is wrong: nothing in the file can be read."""


@dataclass(frozen=True)
class CsvRow:
    """One data row: its first line number, and the raw event or its problems."""

    line: int
    raw: dict[str, Any] | None
    problems: list[FieldProblem]


def _check_header(header: list[str]) -> str | None:
    """The type of a single-type file, None for a file with a ``type`` column."""
    problems = []
    if len(set(header)) != len(header):
        problems.append(FieldProblem("<header>", "a column appears twice"))
    for column in REQUIRED_COLUMNS:
        if column not in header:
            problems.append(FieldProblem("<header>", f"missing column {column!r}"))
    known = set(ENVELOPE_COLUMNS) | set(ALL_DATA_COLUMNS)
    for column in header:
        if column not in known:
            problems.append(FieldProblem("<header>", f"unknown column {column!r}"))
    if problems:
        raise CsvHeaderError(problems)
    if "type" in header:
        return None
    data_columns = [c for c in header if c not in ENVELOPE_COLUMNS]
    for kind, layout in LAYOUTS.items():
        if set(data_columns) == set(layout):
            return kind
    raise CsvHeaderError(
        [
            FieldProblem(
                "<header>",
                "without a 'type' column the data columns must be exactly one type's layout "
                "(see docs/ingestion.md, CSV layouts)",
            )
        ]
    )


def _column_problem(problem: FieldProblem) -> FieldProblem:
    """Name the CSV column: ``data.term_months`` is the column ``term_months``."""
    if problem.field.startswith("data."):
        return FieldProblem(problem.field.removeprefix("data."), problem.message)
    return problem


def column_problems(error: InvalidEventError) -> list[FieldProblem]:
    return [_column_problem(problem) for problem in error.problems]


def row_to_raw(header: list[str], cells: list[str], fixed_type: str | None) -> dict[str, Any]:
    """The event dict of one row (not yet validated), or InvalidEventError."""
    if len(cells) != len(header):
        raise InvalidEventError(
            [FieldProblem("<row>", f"expected {len(header)} cells, found {len(cells)}")]
        )
    row = dict(zip(header, cells, strict=True))
    kind = fixed_type or row.get("type", "")
    raw: dict[str, Any] = {"type": kind} if kind else {}
    for column in ("event_id", "occurred_at", "source"):
        if row.get(column):
            raw[column] = row[column]
    layout = LAYOUTS.get(kind)
    data: dict[str, Any] = {}
    problems = []
    for column, value in row.items():
        if column in ENVELOPE_COLUMNS or value == "":
            continue
        if layout is not None and column not in layout:
            problems.append(FieldProblem(column, f"not a column of {kind}; leave it empty"))
            continue
        data[column] = value
    if problems:
        raise InvalidEventError(problems)
    raw["data"] = data
    return raw


def read_csv_rows(lines: Iterable[str]) -> Iterator[CsvRow]:
    """Every data row of a CSV text; raises CsvHeaderError if the header is wrong."""
    reader = csv.reader(iter(lines))
    try:
        header = [column.strip() for column in next(reader)]
    except StopIteration:
        raise CsvHeaderError([FieldProblem("<header>", "the file is empty")]) from None
    if header and header[0].startswith("\ufeff"):
        header[0] = header[0].removeprefix("\ufeff")
    fixed_type = _check_header(header)
    previous_line = reader.line_num
    for cells in reader:
        line = previous_line + 1
        previous_line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        try:
            yield CsvRow(line, row_to_raw(header, cells, fixed_type), [])
        except InvalidEventError as error:
            yield CsvRow(line, None, error.problems)


def event_row(event: Mapping[str, Any], header: list[str]) -> list[str]:
    """The CSV cells of one event dict (as in JSON) under ``header``."""
    data = event.get("data", {})
    cells = []
    for column in header:
        value = event.get(column) if column in ENVELOPE_COLUMNS else data.get(column)
        cells.append("" if value is None else str(value))
    return cells


def write_csv(events: Iterable[Mapping[str, Any]], handle: IO[str], kind: str | None = None) -> int:
    """Write events (dicts as in JSON) as CSV with the layout of ``kind`` or of all types."""
    header = layout_header(kind)
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(header)
    count = 0
    for event in events:
        writer.writerow(event_row(event, header))
        count += 1
    return count
