"""One way to declare a ``revpulse`` command: its name, its help, its options and what it runs."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streams.settings import Settings

Run = Callable[[Settings, argparse.Namespace], int]


def no_arguments(_parser: argparse.ArgumentParser) -> None:
    """For a command without options."""


@dataclass(frozen=True)
class Command:
    """A subcommand: ``run(settings, args)`` returns the exit code.

    ``service`` marks the commands that run the service (their Kafka client logs at info).
    """

    name: str
    help: str
    description: str
    run: Run
    add_arguments: Callable[[argparse.ArgumentParser], None] = no_arguments
    service: bool = False

    def install(self, commands: Any) -> None:
        """Add this command to the subparsers ``commands``; its ``run`` becomes ``args.handler``."""
        parser = commands.add_parser(self.name, help=self.help, description=self.description)
        self.add_arguments(parser)
        parser.set_defaults(handler=self.run)
