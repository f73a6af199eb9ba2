"""An in-memory sink for tests: keeps every publication."""

from __future__ import annotations

from models.publication import Publication


class MemorySink:
    name = "memory"

    def __init__(self) -> None:
        self.publications: list[Publication] = []
        self.started = False
        self.closed = False
        self.withdrawn = False

    async def start(self) -> None:
        self.started = True

    async def publish(self, publication: Publication) -> None:
        self.publications.append(publication)

    async def check(self) -> None:
        return None

    async def withdraw(self) -> None:
        self.withdrawn = True

    async def close(self) -> None:
        self.closed = True

    @property
    def latest(self) -> Publication | None:
        return self.publications[-1] if self.publications else None
