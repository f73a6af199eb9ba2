"""Every Redis key revpulse writes, in one place. docs/metrics.md, "Catalogue", lists them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RedisKeys:
    prefix: str = "revpulse"

    @property
    def current(self) -> str:
        """Hash: series id -> JSON of the current point (defined values only)."""
        return f"{self.prefix}:current"

    @property
    def meta(self) -> str:
        """Hash: clock, watermark, published_at (epoch seconds), band."""
        return f"{self.prefix}:meta"

    def history(self, series_id: str) -> str:
        """List, newest first, capped: JSON points each time the value changed."""
        return f"{self.prefix}:history:{series_id}"

    @property
    def alerts(self) -> str:
        """Stream: one entry per band change of ACV from marketing leads."""
        return f"{self.prefix}:alerts"

    @property
    def state_buckets(self) -> str:
        """Hash: ``metric|dimension|value|YYYY-MM-DD`` -> decimal amount of that day."""
        return f"{self.prefix}:state:buckets"

    @property
    def state_contracts(self) -> str:
        """Hash: contract id -> JSON of the booked contract (ARR in reporting currency)."""
        return f"{self.prefix}:state:contracts"

    @property
    def state_churns(self) -> str:
        """Hash: event id -> JSON of a churn (account, contract, effective date)."""
        return f"{self.prefix}:state:churns"

    @property
    def updates_channel(self) -> str:
        """Pub/sub channel: one JSON message per publish that changed anything."""
        return f"{self.prefix}:updates"


def text(value: bytes | str) -> str:
    """A Redis reply as text, whether or not the client decodes responses."""
    return value.decode() if isinstance(value, bytes) else value
