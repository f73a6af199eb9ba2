from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration import servers
from tests.integration.monitoring import monitored  # noqa: F401  (session fixture)


@pytest.fixture(scope="session")
def stack_log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session")
def kafka(stack_log_dir: Path) -> Iterator[str]:
    with servers.kafka_bootstrap(stack_log_dir) as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def redis_url(stack_log_dir: Path) -> Iterator[str]:
    with servers.redis_url(stack_log_dir) as url:
        yield url


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
