"""The sink protocol: what every sink does with a Publication."""

from __future__ import annotations

from typing import Protocol

from models.publication import Publication


class Sink(Protocol):
    name: str

    async def start(self) -> None: ...

    async def publish(self, publication: Publication) -> None: ...

    async def check(self) -> None:
        """Raise SinkUnavailableError if the sink lost what it was sent (a Redis restart):
        called when there is nothing new to publish, so the next publish writes it all."""
        ...

    async def withdraw(self) -> None:
        """This worker no longer owns the ledger: stop serving what it published, if the
        sink serves it from this process (Prometheus); shared stores keep it."""
        ...

    async def close(self) -> None: ...
