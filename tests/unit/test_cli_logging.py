"""Client commands keep the Kafka client's chatter to warnings; the service logs it."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from streams.cli.main import configure_logging


@pytest.fixture(autouse=True)
def aiokafka_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger("aiokafka")
    before = logger.level
    logger.setLevel(logging.NOTSET)
    yield logger
    logger.setLevel(before)


@pytest.mark.parametrize("command", ["dlq", "metrics", "alerts", "replay", "simulate"])
def test_client_commands_quiet_aiokafka_info(aiokafka_logger: logging.Logger, command: str) -> None:
    configure_logging("info", command)
    assert aiokafka_logger.level == logging.WARNING
    assert not aiokafka_logger.isEnabledFor(logging.INFO)


@pytest.mark.parametrize("command", ["dev", "worker"])
def test_service_commands_keep_aiokafka_info(aiokafka_logger: logging.Logger, command: str) -> None:
    configure_logging("info", command)
    assert aiokafka_logger.level == logging.NOTSET


def test_debug_level_shows_everything(aiokafka_logger: logging.Logger) -> None:
    configure_logging("debug", "dlq")
    assert aiokafka_logger.level == logging.NOTSET
