"""What the stages need of Faust, as small protocols: a topic to send to and the
ledger-log table. Faust's topics fit them, the table through
streams.pipeline.log_table; unit tests pass fakes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
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
        partition: int | None = None,
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
    """A table (or one partition of one): its local records, and the one way to change
    them."""

    async def send(self, records: Sequence[tuple[bytes, bytes | None]]) -> None:
        """Send each record to the changelog, in order, and keep it locally once the
        broker has it (a value of None is a tombstone: the key is deleted then); return
        when the broker has them all, the last one alone in its producer batch. Raises
        if one was never taken."""
        ...

    def keep(self, key: bytes, value: bytes | None, offset: int) -> None:
        """Keep a record read from the changelog at ``offset`` as the recovery would
        (a value of None deletes the key)."""
        ...

    def get(self, key: bytes) -> bytes | None:
        """The local value of ``key`` (None: no such key): what ``data.get`` gives, read
        directly from the store."""
        ...

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Every local record whose key starts with ``prefix`` (in key order where the
        store keeps one; callers assume none)."""
        ...

    def scan_from(self, prefix: bytes, start: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        """Up to ``limit`` local records whose key starts with ``prefix`` and is not
        before ``start``, in key order."""
        ...
