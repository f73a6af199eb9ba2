"""Bounded channel cardinality: which channels get a series of their own.

``channel`` is free text from the sender, and every distinct value would be a series
in every sink. The rule (docs/metrics.md, "Channels"):

- with an allowlist, exactly the allowlisted channels keep their own label;
- without one, the first ``max_channels`` distinct channels, in the order the ledger
  applies events, keep theirs;
- every other channel counts under :data:`OVERFLOW_CHANNEL`, a label no sender may
  use, so every total stays exact.

``unknown`` (a contract attributed to no lead) is not a sender's channel: it always
keeps its label and never counts toward the cap.

The admitted set is state: replaying the same events in the same order admits the
same channels; in another order, past the cap, other channels may be admitted.
"""

from __future__ import annotations

from collections.abc import Iterable

from models.errors import ConfigError
from models.events import OVERFLOW_CHANNEL, RESERVED_LABELS, UNKNOWN
from models.policy import MetricPolicy

__all__ = ["OVERFLOW_CHANNEL", "ChannelAdmission"]


class ChannelAdmission:
    """The channels admitted so far, and those sent to overflow (each reported once)."""

    def __init__(
        self, max_channels: int, allowlist: Iterable[str] = (), admitted: Iterable[str] = ()
    ) -> None:
        """``admitted``: the channels admitted before, in order (a ledger's kept state)."""
        if max_channels < 0:
            raise ConfigError(f"max_channels must be 0 or more, not {max_channels}")
        self.max_channels = max_channels
        self.allowlist = frozenset(channel.lower() for channel in allowlist)
        reserved = sorted(self.allowlist & RESERVED_LABELS)
        if reserved:
            raise ConfigError(f"the channel allowlist names reserved labels: {reserved}")
        self._admitted: dict[str, None] = dict.fromkeys(admitted)  # in the order admitted
        self._overflowed: set[str] = set()
        self._new_overflowed: list[str] = []

    @classmethod
    def for_policy(cls, policy: MetricPolicy, admitted: Iterable[str] = ()) -> ChannelAdmission:
        return cls(policy.max_channels, policy.channel_allowlist, admitted)

    def label(self, channel: str) -> str:
        """The label ``channel`` counts under if it is admitted now. Changes nothing."""
        if channel == UNKNOWN:
            return channel
        if self.allowlist:
            return channel if channel in self.allowlist else OVERFLOW_CHANNEL
        if channel in self._admitted or len(self._admitted) < self.max_channels:
            return channel
        return OVERFLOW_CHANNEL

    def admit(self, channel: str) -> str:
        """Admit ``channel`` if the rule lets it in; the label it counts under."""
        label = self.label(channel)
        if label == OVERFLOW_CHANNEL:
            if channel not in self._overflowed:
                self._overflowed.add(channel)
                self._new_overflowed.append(channel)
        elif channel != UNKNOWN:
            self._admitted[channel] = None
        return label

    @property
    def admitted(self) -> tuple[str, ...]:
        """The channels seen so far with a label of their own, in the order admitted."""
        return tuple(self._admitted)

    @property
    def overflowed_count(self) -> int:
        """Distinct channels sent to overflow so far."""
        return len(self._overflowed)

    def take_overflowed(self) -> list[str]:
        """Channels sent to overflow since the last call, in order, each only ever once."""
        taken, self._new_overflowed = self._new_overflowed, []
        return taken
