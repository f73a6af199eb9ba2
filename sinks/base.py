"""The sink protocol and what is published through it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from models.series import MetricPoint


@dataclass(frozen=True)
class Publication:
    """One consistent set of metric points, as of one metrics-clock instant."""

    points: tuple[MetricPoint, ...]
    clock: dt.datetime
    watermark: dt.datetime | None
    band: str | None = None


class Sink(Protocol):
    name: str

    async def start(self) -> None: ...

    async def publish(self, publication: Publication) -> None: ...

    async def close(self) -> None: ...
