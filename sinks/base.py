"""The sink protocols: what every sink does with a Publication, and what a store of
state parts does with one part's delta."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from models.publication import Publication
from models.state import StateDelta


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


class PartSink(Protocol):
    """Where a worker writes the parts of the state copy it owns besides the ledger's:
    each entity partition's contracts and churns (streams.pipeline.entity_parts)."""

    name: str

    async def start(self) -> None: ...

    async def write(self, delta: StateDelta, clock: dt.datetime | None) -> None:
        """Bring the copy of the part ``delta.part`` names up to ``delta``, bounded from
        ``clock`` (None: kept whole). Raise SinkUnavailableError when the write failed,
        or when an incremental delta would go to a copy the store lost: the caller then
        writes the part in full."""
        ...

    def forget(self, part: str) -> None:
        """This worker no longer owns the part: forget what its copy holds."""
        ...

    async def close(self) -> None: ...
