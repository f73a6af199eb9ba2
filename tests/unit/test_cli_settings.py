"""A bad setting is one line naming the variable, exit 2, never a traceback."""

from __future__ import annotations

import pytest

from streams.cli.main import main


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        (
            "REVPULSE_INGEST_SECRETS",
            "notjson",
            "bad setting REVPULSE_INGEST_SECRETS: not valid JSON",
        ),
        ("REVPULSE_WEB_PORT", "0", "REVPULSE_WEB_PORT: Input should be greater than or equal to 1"),
        ("REVPULSE_CLOCK", "lunar", "REVPULSE_CLOCK: Input should be 'wall' or 'event'"),
    ],
)
def test_bad_setting_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str, value: str,
    said: str,
) -> None:  # fmt: skip
    monkeypatch.setenv(name, value)
    assert main(["metrics"]) == 2
    err = capsys.readouterr().err
    assert said in err
    assert len(err.strip().splitlines()) == 1
