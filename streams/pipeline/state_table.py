"""Keyed state kept in a log table: every entry of every map is one record of the table,
so the table's compacted changelog (one record per key) is the state, and a restart
reads what the state is, not the history that made it.

Writes gather in memory (pending) and reach the changelog a flush at a time, and a
flush is atomic. Its writes are first logged whole as a write-ahead log (the wal: a few
records of their own, each at most ``WAL_PART_BYTES``); only once the changelog holds
every part of it are they logged as one record per key. A worker killed between the two
finds the wal complete on restart, and :meth:`TableMaps.recover` puts its writes back in
pending, so the next flush logs them again; a wal not complete was never followed by its
per-key records and is ignored. The wal takes turns between two slots, so a flush never
overwrites the wal of the flush before it.

A flush, by the caller (nothing else may flush meanwhile)::

    wal, per_key = maps.take_records()
    # log every wal record and await each one's delivery; then the same for per_key
    maps.settle()

and after a send that failed, ``maps.discard()`` (see there).

Layout: a map's entry under ``name + b"\\x00" + key`` (UTF-8), its value the map's
codec's bytes; a wal part under ``WAL_PREFIX + slot + index`` (1 and 4 bytes).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

from models.errors import RevpulseError
from models.keyed import Codec
from streams.pipeline.ports import LogTable

V = TypeVar("V")

SEPARATOR = b"\x00"  # between a map's name and a key: names never hold it
WAL_PREFIX = b"\x00wal\x00"  # sorts before every map's keys; no name is empty
WAL_SLOTS = 2
WAL_PART_BYTES = 512 * 1024  # a wal part's value at most: header and body
WAL_VERSION = 1
# version, flush sequence number, part index, part count
WAL_HEADER = struct.Struct(">BQII")
# key length, value length (-1: a delete)
WAL_ENTRY = struct.Struct(">Ii")


class StateTableError(RevpulseError):
    """The state table was used out of order, or holds a wal it cannot read."""


class Record(NamedTuple):
    """One changelog record: a value of None is a tombstone."""

    key: bytes
    value: bytes | None


class _Gone(enum.Enum):
    DELETED = 0


DELETED = _Gone.DELETED


def map_prefix(name: str) -> bytes:
    if not name or "\x00" in name:
        raise StateTableError(f"a map's name is not empty and holds no NUL: {name!r}")
    return name.encode() + SEPARATOR


def wal_key(slot: int, index: int) -> bytes:
    return WAL_PREFIX + bytes([slot]) + index.to_bytes(4, "big")


# -- the wal's framing ------------------------------------------------------------


def encode_wal(
    sequence: int, writes: Iterable[Record], part_bytes: int = WAL_PART_BYTES
) -> list[Record]:
    """The wal parts of a flush: its writes framed in one body, cut into parts each
    at most ``part_bytes`` long, each headed by the sequence number and part count."""
    body = bytearray()
    for key, value in writes:
        body += WAL_ENTRY.pack(len(key), -1 if value is None else len(value))
        body += key
        if value is not None:
            body += value
    chunk = part_bytes - WAL_HEADER.size
    if chunk <= 0:
        raise StateTableError(f"a wal part of {part_bytes} bytes holds no body")
    chunks = [bytes(body[start : start + chunk]) for start in range(0, len(body), chunk)]
    chunks = chunks or [b""]
    slot = sequence % WAL_SLOTS
    return [
        Record(
            wal_key(slot, index), WAL_HEADER.pack(WAL_VERSION, sequence, index, len(chunks)) + part
        )
        for index, part in enumerate(chunks)
    ]


def decode_wal_body(body: bytes) -> list[Record]:
    writes: list[Record] = []
    at = 0
    while at < len(body):
        if at + WAL_ENTRY.size > len(body):
            raise StateTableError("a wal ends inside an entry's header")
        key_length, value_length = WAL_ENTRY.unpack_from(body, at)
        at += WAL_ENTRY.size
        key = body[at : at + key_length]
        at += key_length
        value = None
        if value_length >= 0:
            value = body[at : at + value_length]
            at += value_length
        if at > len(body):
            raise StateTableError("a wal ends inside an entry")
        writes.append(Record(key, value))
    return writes


@dataclass(frozen=True)
class WalPart:
    slot: int
    index: int
    sequence: int
    count: int
    body: bytes


def read_wal_part(key: bytes, value: bytes) -> WalPart:
    rest = key[len(WAL_PREFIX) :]
    if len(rest) != 5 or len(value) < WAL_HEADER.size:
        raise StateTableError(f"not a wal part: {key!r}")
    version, sequence, index, count = WAL_HEADER.unpack_from(value)
    if version != WAL_VERSION or index != int.from_bytes(rest[1:], "big"):
        raise StateTableError(f"a wal part of another version or index: {key!r}")
    return WalPart(rest[0], index, sequence, count, value[WAL_HEADER.size :])


@dataclass(frozen=True)
class FoundWal:
    """What the table's wal parts say: the latest sequence number seen, and the writes
    of the latest flush whose wal is complete (None: there is none)."""

    latest_sequence: int | None
    writes: list[Record] | None
    sequence: int | None  # the flush those writes are of


def find_wal(parts: Iterable[tuple[bytes, bytes]]) -> FoundWal:
    by_slot: dict[int, dict[int, WalPart]] = {}
    for key, value in parts:
        part = read_wal_part(key, value)
        by_slot.setdefault(part.slot, {})[part.index] = part
    sequences = {part.sequence for slot in by_slot.values() for part in slot.values()}
    for sequence in sorted(sequences, reverse=True):
        slot = by_slot[sequence % WAL_SLOTS]
        first = slot.get(0)
        if first is None or first.sequence != sequence:
            continue
        chunks = [slot.get(index) for index in range(first.count)]
        if all(c is not None and c.sequence == sequence for c in chunks):
            body = b"".join(c.body for c in chunks if c is not None)
            return FoundWal(max(sequences), decode_wal_body(body), sequence)
    return FoundWal(max(sequences, default=None), None, None)


# -- the maps ---------------------------------------------------------------------


class TableMap(Generic[V]):
    """One named map: reads see its pending writes, then its writes in flight, then
    the table. Written through :class:`TableMaps` only."""

    def __init__(self, table: LogTable, name: str, codec: Codec[V]) -> None:
        self.table = table
        self.name = name
        self.codec = codec
        self.prefix = map_prefix(name)
        self.pending: dict[str, V | _Gone] = {}
        self.in_flight: dict[str, V | _Gone] = {}

    def key_bytes(self, key: str) -> bytes:
        return self.prefix + key.encode()

    def get(self, key: str) -> V | None:
        write = self.pending.get(key)
        if write is None:
            write = self.in_flight.get(key)
        if write is None:
            data = self.table.get(self.key_bytes(key))
            return None if data is None else self.codec.decode(data)
        return None if write is DELETED else write

    def put(self, key: str, value: V) -> None:
        self.pending[key] = value

    def delete(self, key: str) -> None:
        self.pending[key] = DELETED

    def items(self) -> Iterator[tuple[str, V]]:
        """Every entry, in no promised order. The writes not in the table yet are
        those of the moment of this call; consume it before the next flush settles."""
        overlay = {**self.in_flight, **self.pending}
        return self._items(overlay, self.table.scan(self.prefix))

    def items_after(self, key: str | None, limit: int) -> list[tuple[str, V]]:
        """Up to ``limit`` entries after ``key``, in key order: the table's, read from
        where ``key`` sorts (UTF-8 keeps the order of the strings), merged with the
        writes not in the table yet."""
        overlay = {**self.in_flight, **self.pending}
        later = sorted(k for k in overlay if key is None or k > key)
        start = self.prefix if key is None else self.key_bytes(key) + b"\x00"
        # each overlaid key may take the place of a stored one: read that many more
        stored = self.table.scan_from(self.prefix, start, limit + len(later))
        skip = len(self.prefix)
        kept = {k: data for k, data in ((kd[skip:].decode(), data) for kd, data in stored)
                if k not in overlay}  # fmt: skip
        live: dict[str, V] = {}
        for k in later:
            write = overlay[k]
            if not isinstance(write, _Gone):
                live[k] = write
        decode = self.codec.decode
        return [(k, live[k] if k in live else decode(kept[k]))
                for k in sorted([*kept, *live])[:limit]]  # fmt: skip

    def _items(
        self, overlay: dict[str, V | _Gone], stored: Iterator[tuple[bytes, bytes]]
    ) -> Iterator[tuple[str, V]]:
        decode = self.codec.decode
        start = len(self.prefix)
        for key_data, data in stored:
            key = key_data[start:].decode()
            if key not in overlay:
                yield key, decode(data)
        for key, write in overlay.items():
            if write is not DELETED:
                yield key, write

    def encoded(self, writes: Mapping[str, V | _Gone]) -> Iterator[Record]:
        encode = self.codec.encode
        for key, write in writes.items():
            yield Record(self.key_bytes(key), None if write is DELETED else encode(write))

    def pend_data(self, key: str, data: bytes | None) -> bool:
        """Pend a write given as bytes, unless a write of that key is pending."""
        if key in self.pending:
            return False
        self.pending[key] = DELETED if data is None else self.codec.decode(data)
        return True


class TableMaps:
    """The maps of one LogTable, flushed together (see the module's docstring)."""

    def __init__(self, table: LogTable, *, wal_part_bytes: int = WAL_PART_BYTES) -> None:
        self.table = table
        self.wal_part_bytes = wal_part_bytes
        self.maps: dict[str, TableMap[Any]] = {}
        # writes of maps not opened yet (from a recovered wal), as bytes; taken into the
        # map when it is opened
        self.raw_pending: dict[bytes, bytes | None] = {}
        self.raw_in_flight: dict[bytes, bytes | None] = {}
        self.next_sequence = 0

    def open(self, name: str, codec: Codec[V]) -> TableMap[V]:
        opened = self.maps.get(name)
        if opened is None:
            opened = self.maps[name] = TableMap(self.table, name, codec)
            self._adopt_raw(opened)
        return opened

    def _adopt_raw(self, opened: TableMap[Any]) -> None:
        start = len(opened.prefix)
        for raw, into in (
            (self.raw_in_flight, opened.in_flight),
            (self.raw_pending, opened.pending),
        ):
            for key in [key for key in raw if key.startswith(opened.prefix)]:
                data = raw.pop(key)
                into[key[start:].decode()] = DELETED if data is None else opened.codec.decode(data)

    @property
    def pending_count(self) -> int:
        """Writes not taken by a flush yet (one per key)."""
        return len(self.raw_pending) + sum(len(opened.pending) for opened in self.maps.values())

    @property
    def in_flight_count(self) -> int:
        return len(self.raw_in_flight) + sum(len(opened.in_flight) for opened in self.maps.values())

    def take_records(self) -> tuple[list[Record], list[Record]]:
        """The records of a flush of every pending write: (wal records, per-key
        records), to be logged in that order, each list delivered before the next; the
        writes are in flight until :meth:`settle`. Nothing pending: two empty lists."""
        if self.in_flight_count:
            raise StateTableError("a flush was taken before the one before it settled")
        writes = [Record(key, data) for key, data in self.raw_pending.items()]
        for opened in self.maps.values():
            writes.extend(opened.encoded(opened.pending))
        if not writes:
            return [], []
        sequence = self.next_sequence
        self.next_sequence += 1
        wal = encode_wal(sequence, writes, self.wal_part_bytes)
        # parts of this slot past this flush's count are an older flush's: tombstoned
        slot_prefix = WAL_PREFIX + bytes([sequence % WAL_SLOTS])
        current = {record.key for record in wal}
        leftovers = [
            Record(key, None) for key, _ in self.table.scan(slot_prefix) if key not in current
        ]
        self.raw_in_flight, self.raw_pending = self.raw_pending, {}
        for opened in self.maps.values():
            opened.in_flight, opened.pending = opened.pending, {}
        return wal, writes + leftovers

    def settle(self) -> None:
        """Every record of the flush taken last was delivered: the table holds them."""
        self.raw_in_flight = {}
        for opened in self.maps.values():
            opened.in_flight = {}

    def discard(self) -> int:
        """A record of a flush was not delivered: drop every write not in the table,
        pending or in flight, then :meth:`recover` from the table's wal, so that a flush
        whose wal was delivered whole is never left half applied. Returns what
        :meth:`recover` returns; the caller rebuilds what it derived from the maps."""
        self.raw_pending, self.raw_in_flight = {}, {}
        for opened in self.maps.values():
            opened.pending, opened.in_flight = {}, {}
        return self.recover()

    def recover(self) -> int:
        """After the table's recovery, before any read: puts the writes of the latest
        complete wal that the table does not hold back in pending, for the next flush
        to log again; returns how many. Flush sequence numbers go on after the wal's."""
        if self.in_flight_count:
            raise StateTableError("recovery while a flush is in flight")
        found = find_wal(self.table.scan(WAL_PREFIX))
        if found.latest_sequence is not None:
            self.next_sequence = max(self.next_sequence, found.latest_sequence + 1)
        count = 0
        for key, value in found.writes or ():
            if self.table.get(key) != value and self._pend(key, value):
                count += 1
        return count

    def _pend(self, key: bytes, value: bytes | None) -> bool:
        """Pend a write read from the wal, unless a later write of that key is pending."""
        name, _, map_key = key.partition(SEPARATOR)
        opened = self.maps.get(name.decode())
        if opened is None:
            if key in self.raw_pending:
                return False
            self.raw_pending[key] = value
            return True
        return opened.pend_data(map_key.decode(), value)


def table_from_changelog(
    records: Iterable[tuple[bytes | None, bytes | None]],
) -> dict[bytes, bytes]:
    """What a table read from these changelog records holds, as a worker loading it sees
    it: the last value of each key (None deletes), and the writes of the latest complete
    wal over them (a flush cut short is sent again by the next owner)."""
    table: dict[bytes, bytes] = {}
    for key, value in records:
        if key is None:
            continue
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
    found = find_wal((key, value) for key, value in table.items() if key.startswith(WAL_PREFIX))
    for key, value in found.writes or ():
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
    return table
