"""Pointers from the code to the documentation lead somewhere: a docs/ page and its section.

The reference moved from README.md to docs/, so a ``README, "Settings"`` in a message or a
docstring sends a reader to a section that is not there any more.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("models", "sinks", "streams", "bench", "tests")
README_SECTION = re.compile(r"README[,]?\s*(?:\\?[\"'])|README,\s*\w|\bthe README\b")
DOCS_SECTION = re.compile(r"docs/([\w-]+\.md),\s*\\?[\"']([^\"'\\]+)\\?[\"']")


def source_files() -> list[Path]:
    return sorted(
        path
        for folder in SOURCES
        for path in (ROOT / folder).rglob("*")
        if path.suffix in (".py", ".json") and path.name != Path(__file__).name
    )


def headings(page: Path) -> set[str]:
    found = set()
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            found.add(line.lstrip("#").strip().strip("`"))
    return found


def test_nothing_points_to_a_readme_section() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in source_files()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if README_SECTION.search(line)
    ]
    assert found == []


def test_every_docs_section_named_in_the_code_exists() -> None:
    named = 0
    missing = []
    for path in source_files():
        for page, section in DOCS_SECTION.findall(path.read_text(encoding="utf-8")):
            named += 1
            target = ROOT / "docs" / page
            if not target.is_file() or section not in headings(target):
                missing.append(f"{path.relative_to(ROOT)}: docs/{page}, {section!r}")
    assert named >= 8
    assert missing == []
