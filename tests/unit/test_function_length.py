"""No function in streams/ is over 60 lines: a longer one is split into named helpers."""

from __future__ import annotations

import ast
from pathlib import Path

STREAMS = Path(__file__).resolve().parents[2] / "streams"
MAX_LINES = 60


def function_lengths() -> list[tuple[int, str]]:
    """(lines from ``def`` to the last line of the body, "path:line name") of every
    function and method in streams/, nested ones included."""
    found = []
    for path in sorted(STREAMS.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                lines = node.end_lineno - node.lineno + 1
                where = f"{path.relative_to(STREAMS.parent)}:{node.lineno} {node.name}"
                found.append((lines, where))
    return sorted(found, reverse=True)


def test_the_check_sees_the_functions_of_streams() -> None:
    lengths = function_lengths()
    assert len(lengths) > 100
    assert any("streams/pipeline/app.py" in where for _lines, where in lengths)


def test_no_function_in_streams_is_over_60_lines() -> None:
    lengths = function_lengths()
    too_long = [f"{where}: {lines} lines" for lines, where in lengths if lines > MAX_LINES]
    longest_lines, longest = lengths[0]
    print(f"longest: {longest} ({longest_lines} lines)")
    assert not too_long, "split these into helpers:\n" + "\n".join(too_long)
