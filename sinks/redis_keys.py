"""Every Redis key revpulse writes, in one place. docs/metrics.md, "Catalogue", lists them."""

from __future__ import annotations

import re
from dataclasses import dataclass

PART_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


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
    def state_parts(self) -> str:
        """Set: the names of the state partitions that have a stored copy."""
        return f"{self.prefix}:state:parts"

    def state_part(self, part: str) -> StatePartKeys:
        """The keys of one state partition's copy, written only by the worker that owns it."""
        if not PART_NAME.fullmatch(part):
            raise ValueError(f"a state part is named by letters, digits, '_' or '-': {part!r}")
        return StatePartKeys(f"{self.prefix}:state:{part}")

    @property
    def legacy_state(self) -> tuple[str, str, str]:
        """The one un-partitioned copy earlier versions wrote (buckets, contracts, churns):
        read while no part exists, deleted by the first full write of a part."""
        return (
            f"{self.prefix}:state:buckets",
            f"{self.prefix}:state:contracts",
            f"{self.prefix}:state:churns",
        )

    @property
    def updates_channel(self) -> str:
        """Pub/sub channel: one JSON message per publish that changed anything."""
        return f"{self.prefix}:updates"


@dataclass(frozen=True)
class StatePartKeys:
    """One state partition's copy, the state ``--as-of`` is computed from."""

    base: str

    @property
    def buckets(self) -> str:
        """Hash: ``metric|dimension|value|YYYY-MM-DD`` -> decimal amount of that day."""
        return f"{self.base}:buckets"

    @property
    def contracts(self) -> str:
        """Hash: contract id -> JSON of the booked contract (ARR in reporting currency)."""
        return f"{self.base}:contracts"

    @property
    def churns(self) -> str:
        """Hash: event id -> JSON of a churn (account, contract, effective date)."""
        return f"{self.base}:churns"

    @property
    def contract_ends(self) -> str:
        """Sorted set: contract id, scored by the day ordinal its term ends: the ones to
        drop once no answered day reaches them (models.reach)."""
        return f"{self.base}:contract_ends"

    @property
    def churn_days(self) -> str:
        """Sorted set: event id of a churn not yet folded, scored by its day ordinal."""
        return f"{self.base}:churn_days"

    @property
    def churn_kept(self) -> str:
        """Hash: scope (``account:<id>``, ``contract:<id>``) -> ``YYYY-MM-DD|event id`` of
        the one churn kept for it from before the first reached day."""
        return f"{self.base}:churn_kept"

    @property
    def reach(self) -> str:
        """Hash: ``first_as_of``, ``widest_window_days``, ``clock_day``, ``retention_days``:
        the days and windows the copy answers exactly (models.reach.CopyReach); absent
        for an unbounded copy or one an earlier release wrote."""
        return f"{self.base}:reach"

    @property
    def all(self) -> tuple[str, ...]:
        return (
            self.buckets,
            self.contracts,
            self.churns,
            self.contract_ends,
            self.churn_days,
            self.churn_kept,
            self.reach,
        )


def text(value: bytes | str) -> str:
    """A Redis reply as text, whether or not the client decodes responses."""
    return value.decode() if isinstance(value, bytes) else value
