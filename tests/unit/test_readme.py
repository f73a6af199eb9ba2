"""The README documents what the code serves: catalogue and settings."""

from __future__ import annotations

from pathlib import Path

from sinks.catalogue_doc import catalogue_markdown
from streams.settings import Settings

README = (Path(__file__).parents[2] / "README.md").read_text()


def test_readme_catalogue_is_the_generated_one() -> None:
    start = README.index("<!-- catalogue:start")
    start = README.index("\n", start) + 1
    end = README.index("<!-- catalogue:end -->")
    assert README[start:end].strip() == catalogue_markdown().strip(), (
        "README catalogue is stale: regenerate it with `python -m sinks.catalogue_doc`"
    )


def test_every_setting_is_documented() -> None:
    missing = [
        f"REVPULSE_{name.upper()}"
        for name in Settings.model_fields
        if f"REVPULSE_{name.upper()}" not in README
    ]
    assert missing == []
