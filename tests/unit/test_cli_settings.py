"""A bad setting is one line naming the variable, exit 2, never a traceback."""

from __future__ import annotations

import pytest

from streams.cli.main import main
from streams.settings import Settings


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


@pytest.mark.parametrize(
    ("env", "said"),
    [
        (
            {"REVPULSE_WINDOW_DAYS": "[7, 90]"},
            "REVPULSE_WINDOW_DAYS: Value error, [7, 90] leaves out 30, the days of "
            "REVPULSE_BAND_WINDOW=30d",
        ),
        (
            {"REVPULSE_WINDOW_DAYS": "[7, 30]", "REVPULSE_BAND_WINDOW": "90d"},
            "REVPULSE_WINDOW_DAYS: Value error, [7, 30] leaves out 90",
        ),
        (
            {"REVPULSE_BAND_WINDOW": "month"},
            "REVPULSE_BAND_WINDOW: Value error, must be a rolling window of whole days like 30d",
        ),
        ({"REVPULSE_BAND_WINDOW": "0d"}, "REVPULSE_BAND_WINDOW: Value error"),
        (
            {"REVPULSE_CHANNEL_ALLOWLIST": '["ads", "Overflow"]'},
            "REVPULSE_CHANNEL_ALLOWLIST: Value error, names reserved labels ['overflow']",
        ),
        (
            {"REVPULSE_CHANNEL_ALLOWLIST": '["all"]'},
            "REVPULSE_CHANNEL_ALLOWLIST: Value error, names reserved labels ['all']",
        ),
    ],
)
def test_settings_that_would_lose_the_band_or_a_label_are_refused_at_start(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    said: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["metrics"]) == 2
    err = capsys.readouterr().err
    assert said in err
    assert len(err.strip().splitlines()) == 1


def test_a_band_window_among_the_window_days_is_accepted() -> None:
    settings = Settings(band_window="90d", window_days=[7, 90], channel_allowlist=["ads"])
    assert settings.policy().window_days == (7, 90)
