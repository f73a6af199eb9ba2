"""Request bodies of the ingestion API: one event, a JSON array, or NDJSON. Pure, no I/O.

Every bad event is reported with its index in the batch (0-based) and, for NDJSON, its
line number, so a caller can fix exactly what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from models.errors import FieldProblem, InvalidEventError, RevpulseError
from models.events import Event, decode_json, parse_event

BodyFormat = Literal["json", "ndjson"]
MEDIA_TYPES: dict[str, BodyFormat] = {
    "application/json": "json",
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
    "application/jsonl": "ndjson",
}


class BodyError(RevpulseError):
    """The body as a whole cannot be read (not JSON, empty): no event index applies."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class BadEvent:
    index: int
    problems: list[FieldProblem]
    line: int | None = None

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"index": self.index}
        if self.line is not None:
            found["line"] = self.line
        found["problems"] = [{"field": p.field, "message": p.message} for p in self.problems]
        return found


@dataclass
class ParsedBody:
    batch: bool
    events: list[Event] = field(default_factory=list)
    bad: list[BadEvent] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.events) + len(self.bad)


def body_format(content_type: str | None) -> BodyFormat | None:
    """The format of a Content-Type header value, or None if it is not one we take."""
    if not content_type:
        return None
    media_type = content_type.split(";", 1)[0].strip().lower()
    return MEDIA_TYPES.get(media_type)


TOO_DEEP = "nested too deeply"


def _decode(text: bytes) -> Any:
    try:
        return decode_json(text)
    except RecursionError:
        raise InvalidEventError([FieldProblem("<body>", f"not valid JSON: {TOO_DEEP}")]) from None


def _validate(raw: Any, check: Callable[[Event], None] | None) -> Event:
    try:
        event = parse_event(raw)
    except RecursionError:
        raise InvalidEventError([FieldProblem("<event>", TOO_DEEP)]) from None
    if check is not None:
        check(event)
    return event


def parse_body(
    body: bytes, fmt: BodyFormat, check: Callable[[Event], None] | None = None
) -> ParsedBody:
    """Every valid event of the body and every bad one; ``check`` adds rules (e.g. currency).

    Raises BodyError when the body is not JSON (NDJSON: when no line is), or holds no event.
    """
    if not body.strip():
        raise BodyError("the body is empty: send one event, a JSON array or NDJSON")
    if fmt == "json":
        try:
            raw = _decode(body)
        except InvalidEventError as error:
            raise BodyError(error.problems[0].message) from None
        if isinstance(raw, list):
            if not raw:
                raise BodyError("the batch is empty")
            return _parse_items(list(enumerate(raw)), None, check)
        parsed = ParsedBody(batch=False)
        try:
            parsed.events.append(_validate(raw, check))
        except InvalidEventError as error:
            parsed.bad.append(BadEvent(0, error.problems))
        return parsed
    items: list[tuple[int, Any]] = []
    lines: list[int] = []
    decode_problems: dict[int, list[FieldProblem]] = {}
    for number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        index = len(items)
        lines.append(number)
        try:
            items.append((index, _decode(line)))
        except InvalidEventError as error:
            items.append((index, None))
            decode_problems[index] = error.problems
    if not items:
        raise BodyError("the body holds no event")
    return _parse_items(items, lines, check, decode_problems)


def _parse_items(
    items: list[tuple[int, Any]],
    lines: list[int] | None,
    check: Callable[[Event], None] | None,
    decode_problems: dict[int, list[FieldProblem]] | None = None,
) -> ParsedBody:
    parsed = ParsedBody(batch=True)
    for index, raw in items:
        line = lines[index] if lines is not None else None
        if decode_problems and index in decode_problems:
            parsed.bad.append(BadEvent(index, decode_problems[index], line))
            continue
        try:
            parsed.events.append(_validate(raw, check))
        except InvalidEventError as error:
            parsed.bad.append(BadEvent(index, error.problems, line))
    return parsed
