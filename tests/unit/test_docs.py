"""The documentation follows the code: catalogue, settings, commands, links, a short README."""

from __future__ import annotations

import argparse
import importlib
import re
import tomllib
from pathlib import Path

import pytest

from sinks.catalogue_doc import catalogue_markdown
from streams.settings import Settings

ROOT = Path(__file__).parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
README_MAX_LINES = 220
PAGES = [README, *sorted(DOCS.glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_catalogue_is_the_generated_one() -> None:
    page = text(DOCS / "metrics.md")
    start = page.index("\n", page.index("<!-- catalogue:start")) + 1
    end = page.index("<!-- catalogue:end -->")
    assert page[start:end].strip() == catalogue_markdown().strip(), (
        "docs/metrics.md catalogue is stale: paste the output of "
        "`python -m sinks.catalogue_doc` between its catalogue markers"
    )


def test_every_setting_is_documented() -> None:
    page = text(DOCS / "settings.md")
    names = [f"REVPULSE_{name.upper()}" for name in Settings.model_fields]
    assert len(names) > 40
    assert [name for name in names if f"`{name}`" not in page] == []


def cli_parser() -> argparse.ArgumentParser:
    """The parser of the installed ``revpulse`` command, found from its entry point."""
    project = tomllib.loads(text(ROOT / "pyproject.toml"))["project"]
    module_name = project["scripts"]["revpulse"].split(":")[0]
    parser = importlib.import_module(module_name).build_parser()
    assert isinstance(parser, argparse.ArgumentParser)
    return parser


def commands_and_options() -> dict[str, list[str]]:
    """Every subcommand of ``revpulse`` and its long options (``--help`` aside)."""
    subparsers = [
        action for action in cli_parser()._actions if isinstance(action, argparse._SubParsersAction)
    ]
    assert len(subparsers) == 1
    return {
        name: [
            option
            for action in sub._actions
            for option in action.option_strings
            if option.startswith("--") and option != "--help"
        ]
        for name, sub in subparsers[0].choices.items()
    }


def test_the_parser_is_found() -> None:
    found = commands_and_options()
    assert {"dev", "worker", "replay", "metrics", "dlq"} <= set(found)
    assert "--via" in found["dlq"] and "--skip-invalid" in found["dlq"]


@pytest.mark.parametrize("command", sorted(commands_and_options()))
def test_every_command_and_option_is_in_the_cli_page(command: str) -> None:
    page = text(DOCS / "cli.md")
    assert f"## `revpulse {command}`" in page, f"docs/cli.md has no section for {command}"
    section = page.split(f"## `revpulse {command}`", 1)[1].split("\n## ", 1)[0]
    synopsis = page.split("## Synopsis", 1)[1].split("\n## ", 1)[0]
    for option in commands_and_options()[command]:
        pattern = re.compile(re.escape(option) + r"(?![\w-])")
        assert pattern.search(section), f"revpulse {command} {option}: not in its section"
        usage = [line for line in synopsis.splitlines() if f"revpulse {command}" in line]
        assert any(pattern.search(line) for line in usage), (
            f"revpulse {command} {option}: not in the synopsis"
        )


def test_readme_is_short() -> None:
    lines = len(text(README).splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move reference to docs/"


def anchors(path: Path) -> set[str]:
    """The heading anchors GitHub gives a Markdown page."""
    found = set()
    in_code = False
    for line in text(path).splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


def broken_links(page: Path) -> list[str]:
    """Relative links of ``page`` to a missing file, or to a missing heading of a page."""
    broken = []
    for target in LINK.findall(text(page)):
        if re.match(r"[a-z]+:", target):
            continue  # http:, https:, mailto:
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        if not resolved.exists() or (
            anchor and resolved.suffix == ".md" and anchor not in anchors(resolved)
        ):
            broken.append(target)
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_a_broken_link_is_found(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Reading any day: `--as-of`\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n[gone](missing.md#title) [here](#title) [nowhere](#other) "
        "[there](other.md#reading-any-day---as-of) [not there](other.md#title) "
        "[web](https://example.com/x)\n```\n# not a heading\n```\n[code](#not-a-heading)\n"
    )
    assert broken_links(page) == ["missing.md#title", "#other", "other.md#title", "#not-a-heading"]
