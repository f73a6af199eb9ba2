"""The floors of the code: no module imports from a floor above its own.

models < sinks < streams (settings, errors, table) < streams.kafka < streams.ingest
< streams.pipeline < streams.devstack < streams.cli. Sideways, within one package, is fine.
Imports inside functions count too. The domain in models/ imports no I/O library, and the
batch oracle (bench/oracle.py) reads nothing of the streaming code it is compared with.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("models", "sinks", "streams")
FLOORS = (
    "models",
    "sinks",
    "streams",
    "streams.kafka",
    "streams.ingest",
    "streams.pipeline",
    "streams.devstack",
    "streams.cli",
)
NOT_IN_MODELS = ("streams", "sinks", "bench", "aiohttp", "aiokafka", "faust", "redis")


def floor_of(module: str) -> int | None:
    """The floor of a module of revpulse (the deepest listed package it is in), else None."""
    found = None
    for index, package in enumerate(FLOORS):
        if module == package or module.startswith(package + "."):
            found = index
    return found


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, module) of every import in ``source``, at any depth, relative ones resolved."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            # `from streams.cli import alerts` imports the module streams.cli.alerts
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
    return found


def upward_imports(source: str, module: str, is_package: bool = False) -> list[str]:
    """Every import of ``source`` that reaches a floor above the one of ``module``."""
    own = floor_of(module)
    assert own is not None, f"{module} is on no floor: add its package to FLOORS"
    problems = []
    for line, target in imported_modules(source, module, is_package):
        target_floor = floor_of(target)
        if target_floor is not None and target_floor > own:
            problems.append(
                f"{module}:{line} imports {target} ({FLOORS[target_floor]} > {FLOORS[own]})"
            )
    return problems


def library_modules() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def test_every_package_of_streams_is_on_a_floor() -> None:
    packages = {module_name(p.parent / "__init__.py") for p in (ROOT / "streams").rglob("*.py")}
    assert packages - set(FLOORS) == set()


def test_no_import_goes_up_a_floor() -> None:
    problems = []
    for path in library_modules():
        problems += upward_imports(
            path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py"
        )
    assert problems == []


def test_models_imports_no_io_and_nothing_of_the_service() -> None:
    problems = []
    for path in sorted((ROOT / "models").rglob("*.py")):
        name = module_name(path)
        for line, target in imported_modules(path.read_text(encoding="utf-8"), name, False):
            if target.split(".")[0] in NOT_IN_MODELS:
                problems.append(f"{name}:{line} imports {target}")
    assert problems == []


def test_the_oracle_reads_only_the_domain() -> None:
    source = (ROOT / "bench" / "oracle.py").read_text(encoding="utf-8")
    ours = {
        target.split(".")[0]
        for _, target in imported_modules(source, "bench.oracle", False)
        if target.split(".")[0] in {"models", "sinks", "streams", "bench"}
    }
    assert ours == {"models"}


@pytest.mark.parametrize(
    ("module", "source", "upward"),
    [
        ("models.book", "from streams.settings import Settings\n", True),
        ("sinks.codec", "def f():\n    from streams.pipeline import ops\n", True),
        ("streams.kafka.keys", "import streams.ingest.body\n", True),
        ("streams.devstack.session", "from streams.cli import dev\n", True),
        ("streams.pipeline.app", "from . import owner\nfrom ..ingest import http\n", False),
        ("streams.cli.main", "from streams.cli import alerts\nfrom models import money\n", False),
        ("streams.table", "from .pipeline import app\n", True),
    ],
)
def test_the_check_sees_an_upward_import(module: str, source: str, upward: bool) -> None:
    assert bool(upward_imports(source, module)) is upward
