"""What the stages need of Faust, as small protocols: a topic to send to and the
ledger-log table. Faust's topics and tables fit them; unit tests pass fakes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, Protocol

Headers = list[tuple[str, bytes]]
# (partition, start, end): the records of one partition from start to before end
ReadRange = Callable[[int, int, int], Awaitable[Sequence[Any]]]


class Topic(Protocol):
    async def send(
        self,
        *,
        key: bytes | None = None,
        value: bytes | None = None,
        headers: Headers | None = None,
    ) -> Awaitable[Any]:
        """Queue a message; the awaitable returned resolves when the broker took it."""
        ...

    def send_soon(
        self,
        *,
        key: bytes | None = None,
        value: bytes | None = None,
        headers: Headers | None = None,
    ) -> Any: ...


class LogTable(Protocol):
    """The ledger-log table: its local data and a way to log a change."""

    @property
    def data(self) -> MutableMapping[bytes, bytes]: ...

    def send_changelog(self, partition: int | None, key: bytes, value: bytes) -> Awaitable[Any]:
        """Log one record; the awaitable resolves when the broker took it."""
        ...
