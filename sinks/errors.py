"""Errors of the sinks: a sink that cannot be reached."""

from __future__ import annotations

from models.errors import RevpulseError


class SinkUnavailableError(RevpulseError):
    """A sink could not be reached; the publish is retried on the next tick."""

    def __init__(self, sink: str, reason: str) -> None:
        self.sink = sink
        self.reason = reason
        super().__init__(f"sink {sink} unavailable: {reason}")
