"""Errors of the running service: a broker or Redis that cannot be started or reached."""

from __future__ import annotations

from models.errors import RevpulseError


class StackError(RevpulseError):
    """A broker or Redis server could not be started (embedded) or reached."""
