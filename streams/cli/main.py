"""The ``revpulse`` command line. Settings are read here, once, and passed down."""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence

from pydantic import ValidationError
from pydantic_settings import SettingsError

from models.errors import ConfigError, RevpulseError
from streams.cli import alerts, dev, dlq, metrics, replay, simulate, worker
from streams.cli.command import Command
from streams.settings import Settings

DESCRIPTION = """\
revpulse: live revenue metrics (ACV, ARR, TCV, conversion rate, CAC, ...) from CRM events.

Every setting is an environment variable REVPULSE_<NAME> (see docs/settings.md),
for example REVPULSE_KAFKA_BOOTSTRAP=127.0.0.1:9092 REVPULSE_REDIS_URL=redis://...
Run `revpulse COMMAND --help` for the options of a command.
"""
COMMANDS: tuple[Command, ...] = (
    dev.COMMAND,
    worker.COMMAND,
    simulate.COMMAND,
    replay.COMMAND,
    metrics.COMMAND,
    dlq.COMMAND,
    alerts.COMMAND,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="revpulse",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.install(commands)
    return parser


# Commands that run the service log what the Kafka client says at `info` (group joins,
# assignments); the short-lived client commands keep it to warnings, so their output
# is what the user asked for.
SERVICE_COMMANDS = frozenset(command.name for command in COMMANDS if command.service)


def configure_logging(log_level: str, command: str) -> None:
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if command not in SERVICE_COMMANDS and log_level != "debug":
        logging.getLogger("aiokafka").setLevel(max(logging.WARNING, logging.root.level))


def read_settings() -> Settings:
    """The settings from the environment, or a ConfigError that says in one line what is wrong."""
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"REVPULSE_{'_'.join(str(part) for part in item['loc'][:1]).upper()}: {item['msg']}"
            for item in error.errors(include_url=False)
        )
        raise ConfigError(f"bad setting: {problems}") from None
    except SettingsError as error:
        field = re.search(r'field "(\w+)"', str(error))
        name = f"REVPULSE_{field.group(1).upper()}" if field else "a REVPULSE_ variable"
        cause = f": {error.__cause__}" if error.__cause__ else ""
        raise ConfigError(f"bad setting {name}: not valid JSON{cause}") from None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = read_settings()
    except ConfigError as error:
        print(f"revpulse: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, args.command)
    try:
        code: int = args.handler(settings, args)
        return code
    except RevpulseError as error:
        print(f"revpulse: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `revpulse metrics | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
