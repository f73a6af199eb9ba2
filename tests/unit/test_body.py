"""Request bodies of POST /v1/events: one event, a JSON array, NDJSON."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from models.errors import FieldProblem, InvalidEventError
from models.events import Event, SpendRecorded
from streams.ingest.body import BodyError, body_format, parse_body


def lead(event_id: str = "e1", **data: Any) -> dict[str, Any]:
    body = {"lead_id": "L1", "channel": "organic", "origin": "marketing", **data}
    return {
        "event_id": event_id,
        "type": "lead.created",
        "occurred_at": "2026-03-01T12:00:00Z",
        "data": body,
    }


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/json", "json"),
        ("application/json; charset=utf-8", "json"),
        ("Application/JSON", "json"),
        ("application/x-ndjson", "ndjson"),
        ("application/ndjson", "ndjson"),
        ("text/plain", None),
        ("application/xml", None),
        ("", None),
        (None, None),
    ],
)
def test_body_format(content_type: str | None, expected: str | None) -> None:
    assert body_format(content_type) == expected


def test_one_event() -> None:
    parsed = parse_body(dumps(lead(estimated_value=1.10)), "json")
    assert not parsed.batch and len(parsed.events) == 1 and parsed.bad == []
    assert parsed.events[0].data.estimated_value == Decimal("1.10")  # type: ignore[union-attr]


def test_one_bad_event_names_the_field() -> None:
    parsed = parse_body(dumps(lead(lead_id="")), "json")
    assert parsed.events == []
    assert parsed.bad[0].index == 0
    assert parsed.bad[0].as_dict()["problems"][0]["field"] == "data.lead_id"


def test_array_reports_index_of_each_bad_event() -> None:
    body = dumps([lead("a"), lead("b", origin="aliens"), lead("c"), {"type": "nope"}])
    parsed = parse_body(body, "json")
    assert parsed.batch and [e.event_id for e in parsed.events] == ["a", "c"]
    assert [bad.index for bad in parsed.bad] == [1, 3]
    assert parsed.bad[0].problems[0].field == "data.origin"
    assert parsed.bad[1].problems[0].field == "type"
    assert parsed.total == 4


def test_ndjson_reports_index_and_line() -> None:
    body = b"\n".join([dumps(lead("a")), b"", b"{broken", dumps(lead("c", channel="a b"))])
    parsed = parse_body(body + b"\n", "ndjson")
    assert [e.event_id for e in parsed.events] == ["a"]
    assert [(bad.index, bad.line) for bad in parsed.bad] == [(1, 3), (2, 4)]
    assert parsed.bad[0].problems[0].field == "<body>"
    assert parsed.bad[1].as_dict() == {
        "index": 2,
        "line": 4,
        "problems": [{"field": "data.channel", "message": parsed.bad[1].problems[0].message}],
    }


@pytest.mark.parametrize(
    ("body", "fmt", "message"),
    [
        (b"", "json", "empty"),
        (b"  \n", "ndjson", "empty"),
        (b"[]", "json", "empty"),
        (b"{nope", "json", "not valid JSON"),
        (b"\xff\xfe", "json", "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "json", "nested too deeply"),
    ],
)
def test_whole_body_errors(body: bytes, fmt: Any, message: str) -> None:
    with pytest.raises(BodyError, match=message):
        parse_body(body, fmt)


@pytest.mark.parametrize("raw", [b"42", b'"text"', b"null", b"[1]"])
def test_non_objects_are_bad_events(raw: bytes) -> None:
    parsed = parse_body(raw, "json")
    assert parsed.bad and parsed.bad[0].problems[0].field == "<event>"


def test_extra_check_applies_to_every_event() -> None:
    def no_spend(event: Event) -> None:
        if isinstance(event, SpendRecorded):
            raise InvalidEventError([FieldProblem("data.currency", "no exchange rate")])

    spend = {
        "event_id": "s",
        "type": "spend.recorded",
        "occurred_at": "2026-03-01T12:00:00Z",
        "data": {"channel": "organic", "amount": "5", "currency": "EUR"},
    }
    parsed = parse_body(dumps([lead("a"), spend]), "json", no_spend)
    assert [bad.index for bad in parsed.bad] == [1]
    assert parsed.bad[0].problems[0].field == "data.currency"


def test_deeply_nested_ndjson_line_is_a_bad_event() -> None:
    parsed = parse_body(dumps(lead("a")) + b"\n" + b"[" * 100_000, "ndjson")
    assert [e.event_id for e in parsed.events] == ["a"]
    assert parsed.bad[0].index == 1 and "nested too deeply" in parsed.bad[0].problems[0].message
