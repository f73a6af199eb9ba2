"""Keyed state: named maps from a string key to an immutable value.

The ledger and the book timeline keep what grows with the number of entities (leads,
contracts, accounts, event ids) in these maps, never in dicts of their own, so where the
maps live is the caller's choice: :class:`MemoryMaps` holds Python objects (tests, the
oracle, the benchmarks of the domain), and the worker's maps live in an on-disk table
whose changelog is the state (streams.pipeline.state_table).

Rules for whoever keeps state in a map:

- a value is immutable (a frozen dataclass, a tuple, a Decimal): to change one, ``put``
  a new value; a value read with ``get`` is never changed in place;
- ``items`` promises no order: sort where order matters; ``items_after`` walks the
  map in key order a slice at a time, for work spread over many calls;
- every map is opened with the codec that turns its values into bytes and back, so a
  map kept on disk can hold it. ``MemoryMaps`` never calls it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, Protocol, TypeVar

V = TypeVar("V")


class _KeyWalk:
    """A sorted snapshot of a dict's keys, for ``items_after`` on maps in memory: taken
    when a walk starts (or does not go on from where the last call stopped), so a walk
    costs one sort, not one per call."""

    def __init__(self) -> None:
        self._keys: list[str] = []
        self._at = 0
        self._last: str | None = None
        self._walking = False

    def after(self, present: Mapping[str, Any], key: str | None, limit: int) -> list[str]:
        if key is None or not self._walking or key != self._last:
            self._keys = sorted(k for k in present if key is None or k > key)
            self._at = 0
        taken: list[str] = []
        keys = self._keys
        while self._at < len(keys) and len(taken) < limit:
            candidate = keys[self._at]
            self._at += 1
            if candidate in present:  # not deleted since the snapshot
                taken.append(candidate)
        self._walking = bool(taken)
        self._last = taken[-1] if taken else None
        return taken


@dataclass(frozen=True)
class Codec(Generic[V]):
    """How a map's values are written as bytes, and read back."""

    encode: Callable[[V], bytes]
    decode: Callable[[bytes], V]


class KeyedMap(Protocol[V]):
    def get(self, key: str) -> V | None: ...

    def put(self, key: str, value: V) -> None: ...

    def delete(self, key: str) -> None: ...

    def items(self) -> Iterator[tuple[str, V]]:
        """Every entry, in no promised order."""
        ...

    def items_after(self, key: str | None, limit: int) -> list[tuple[str, V]]:
        """Up to ``limit`` entries whose keys come after ``key`` (from the first if None),
        in key order. Calls that each go on from the last key the one before returned
        see every key present throughout; a key put meanwhile may be left out."""
        ...


class StateMaps(Protocol):
    def open(self, name: str, codec: Codec[V]) -> KeyedMap[V]:
        """The map called ``name``, holding what was put in it before: a ledger made on
        maps that hold state goes on from that state. Names are owned by one part
        each (``ledger.*``, ``timeline.*``)."""
        ...


class DictMap(Generic[V]):
    """A map of Python objects in memory."""

    def __init__(self) -> None:
        self._values: dict[str, V] = {}
        self._walk = _KeyWalk()

    def get(self, key: str) -> V | None:
        return self._values.get(key)

    def put(self, key: str, value: V) -> None:
        self._values[key] = value

    def delete(self, key: str) -> None:
        self._values.pop(key, None)

    def items(self) -> Iterator[tuple[str, V]]:
        return iter(list(self._values.items()))

    def items_after(self, key: str | None, limit: int) -> list[tuple[str, V]]:
        values = self._values
        return [(k, values[k]) for k in self._walk.after(values, key, limit)]

    def __len__(self) -> int:
        return len(self._values)


class EncodedMap(Generic[V]):
    """A map holding its values as their codec's bytes: every read decodes, as a map on
    disk does, so a test on it proves the codec keeps every value exact."""

    def __init__(self, codec: Codec[V]) -> None:
        self.codec = codec
        self._values: dict[str, bytes] = {}
        self._walk = _KeyWalk()

    def get(self, key: str) -> V | None:
        data = self._values.get(key)
        return None if data is None else self.codec.decode(data)

    def put(self, key: str, value: V) -> None:
        self._values[key] = self.codec.encode(value)

    def delete(self, key: str) -> None:
        self._values.pop(key, None)

    def items(self) -> Iterator[tuple[str, V]]:
        decode = self.codec.decode
        return iter([(key, decode(data)) for key, data in self._values.items()])

    def items_after(self, key: str | None, limit: int) -> list[tuple[str, V]]:
        values, decode = self._values, self.codec.decode
        return [(k, decode(values[k])) for k in self._walk.after(values, key, limit)]

    def __len__(self) -> int:
        return len(self._values)


class MemoryMaps:
    """Maps in memory: the state of a ledger that is never stored. ``encoded``: hold
    values as bytes through their codecs (slower; for tests of the codecs)."""

    def __init__(self, *, encoded: bool = False) -> None:
        self.encoded = encoded
        self.maps: dict[str, DictMap[Any] | EncodedMap[Any]] = {}

    def open(self, name: str, codec: Codec[V]) -> DictMap[V] | EncodedMap[V]:
        opened = self.maps.get(name)
        if opened is None:
            opened = self.maps[name] = EncodedMap(codec) if self.encoded else DictMap()
        return opened


# -- building blocks for codecs: compact JSON of plain values -----------------------


def json_codec(to_plain: Callable[[V], Any], from_plain: Callable[[Any], V]) -> Codec[V]:
    """A codec through JSON: ``to_plain`` makes lists, strings, numbers and None."""

    def encode(value: V) -> bytes:
        return json.dumps(to_plain(value), separators=(",", ":")).encode()

    def decode(data: bytes) -> V:
        return from_plain(json.loads(data))

    return Codec(encode, decode)


def money_plain(amount: Decimal) -> str:
    """Exact: the decimal's own digits."""
    return str(amount)


def day_plain(day: dt.date) -> int:
    return day.toordinal()


def day_from_plain(ordinal: int) -> dt.date:
    return dt.date.fromordinal(ordinal)


def instant_plain(instant: dt.datetime) -> str:
    return instant.isoformat()


def instant_from_plain(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


MONEY: Codec[Decimal] = json_codec(money_plain, Decimal)
COUNT: Codec[int] = json_codec(int, int)
TEXTS: Codec[tuple[str, ...]] = json_codec(list, tuple)
