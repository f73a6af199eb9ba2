"""``revpulse alerts`` without Redis: the stream reply, the table, --json, the parser."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sinks.redis_keys import RedisKeys
from streams.cli import alerts
from streams.cli.main import build_parser
from streams.settings import Settings

# XREVRANGE's reply, newest first, as redis-py returns it without decode_responses
REPLY = [
    (
        b"1779969600000-0",
        {b"previous": b"moderate", b"current": b"under", b"value": b"483333.333333",
         b"window": b"30d", b"clock": b"2026-05-03T12:00:00+00:00"},
    ),
    (
        b"1779883200000-0",
        {b"previous": b"strong", b"current": b"moderate", b"value": b"700000.000000",
         b"window": b"30d", b"clock": b"2026-05-02T12:00:00+00:00"},
    ),
]  # fmt: skip


def test_entries_from_reply() -> None:
    newest, oldest = alerts.entries_from_reply(REPLY)
    assert newest.entry_id == "1779969600000-0"
    assert newest.published_at.isoformat() == "2026-05-28T12:00:00+00:00"
    assert newest.as_dict() == {
        "id": "1779969600000-0",
        "published_at": "2026-05-28T12:00:00+00:00",
        "previous": "moderate",
        "current": "under",
        "value": "483333.333333",
        "window": "30d",
        "clock": "2026-05-03T12:00:00+00:00",
    }
    assert oldest.fields["current"] == "moderate"


def test_table_lines() -> None:
    lines = alerts.table_lines(alerts.entries_from_reply(REPLY))
    assert lines[0].split("  ")[0] == "published (UTC)"
    assert lines[1].startswith("2026-05-28 12:00:00  2026-05-03T12:00:00+00:00  moderate -> under")
    assert lines[1].endswith("483,333.33  30d")
    assert lines[2].endswith("  700,000  30d")
    # aligned columns: the amounts right-aligned, the window column after them
    assert lines[0].index("window") == lines[1].index("30d") == lines[2].index("30d")


def _fake_read(reply: list[Any]) -> object:
    async def read(url: str, keys: RedisKeys, count: int) -> list[alerts.BandChangeEntry]:
        assert keys.alerts == "rp-test:alerts"
        return alerts.entries_from_reply(reply)[:count]

    return read


@pytest.mark.parametrize("as_json", [False, True])
def test_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    monkeypatch.setattr(alerts, "read_band_changes", _fake_read(REPLY))
    argv = ["alerts", "--count", "1", *(["--json"] if as_json else [])]
    args = build_parser().parse_args(argv)
    assert args.handler(Settings(redis_prefix="rp-test"), args) == 0
    out = capsys.readouterr().out.splitlines()
    if as_json:
        assert [json.loads(line)["current"] for line in out] == ["under"]
    else:
        assert out[0].startswith("band changes of ACV from marketing leads, newest first")
        assert len(out) == 3 and "moderate -> under" in out[2]


def test_run_with_no_changes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(alerts, "read_band_changes", _fake_read([]))
    args = build_parser().parse_args(["alerts"])
    assert args.handler(Settings(redis_prefix="rp-test"), args) == 0
    assert "no band changes" in capsys.readouterr().out


def test_count_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["alerts", "--count", "0"])
    assert "must be at least 1" in capsys.readouterr().err
