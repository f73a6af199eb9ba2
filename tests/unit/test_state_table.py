"""Keyed state in a log table: reads through pending, in-flight and stored writes; a
flush logged atomically through its wal; recovery after a crash between the wal and the
per-key records; and FaustLogTable's tombstones and scans on Faust's own stores."""

from __future__ import annotations

import asyncio
from collections.abc import Generator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import faust
import pytest
from faust.types import TP
from faust.types.tuples import Message

from models.keyed import COUNT, MONEY, TEXTS
from streams.pipeline.log_table import (
    BLOOM_BITS_PER_KEY,
    ROCKSDB_OPTIONS,
    FaustLogTable,
    prefixed_items,
)
from streams.pipeline.state_table import (
    WAL_PART_BYTES,
    WAL_PREFIX,
    Record,
    StateTableError,
    TableMaps,
    encode_wal,
    find_wal,
    wal_key,
)
from tests.unit.pipeline_fakes import BatchProducer


class Sent:
    """An awaitable resolved when its record is delivered."""

    def __init__(self) -> None:
        self.done = False

    def __await__(self) -> Generator[Any, None, None]:
        assert self.done
        return
        yield


class FakeLogTable:
    """The changelog as a dict of what it holds (compacted: the last record of a key),
    and the sends not delivered yet; ``scan`` in reverse key order, so no caller can
    lean on an order."""

    def __init__(self, *, immediate: bool = False) -> None:
        self.data: dict[bytes, bytes] = {}
        self.queued: list[tuple[bytes, bytes | None, Sent]] = []
        self.immediate = immediate

    def log(self, key: bytes, value: bytes | None) -> Sent:
        sent = Sent()
        self.queued.append((key, value, sent))
        if self.immediate:
            self.deliver()
        return sent

    def keep(self, key: bytes, value: bytes | None, offset: int) -> None:
        self._apply(key, value)

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        found = [(key, value) for key, value in self.data.items() if key.startswith(prefix)]
        return iter(sorted(found, reverse=True))

    def deliver(self, count: int | None = None) -> None:
        """Deliver the first ``count`` queued records (all: None)."""
        count = len(self.queued) if count is None else count
        delivered, self.queued = self.queued[:count], self.queued[count:]
        for key, value, sent in delivered:
            self._apply(key, value)
            sent.done = True

    def crash(self) -> None:
        """The worker dies: what was not delivered is gone."""
        self.queued = []

    def _apply(self, key: bytes, value: bytes | None) -> None:
        if value is None:
            self.data.pop(key, None)
        else:
            self.data[key] = value


def log_all(table: FakeLogTable, records: list[Record]) -> None:
    for record in records:
        table.log(*record)


def flush(maps: TableMaps, table: FakeLogTable) -> None:
    """The caller's flush, every record delivered."""
    wal, per_key = maps.take_records()
    log_all(table, wal)
    table.deliver()
    log_all(table, per_key)
    table.deliver()
    maps.settle()


def map_entries(table: FakeLogTable) -> dict[bytes, bytes]:
    return {key: value for key, value in table.data.items() if not key.startswith(WAL_PREFIX)}


# -- reads and writes ---------------------------------------------------------------


def test_a_write_is_read_while_pending_in_flight_and_stored() -> None:
    table = FakeLogTable()
    maps = TableMaps(table)
    amounts = maps.open("ledger.amounts", MONEY)
    amounts.put("c1", Decimal("12.50"))
    assert amounts.get("c1") == Decimal("12.50") and maps.pending_count == 1
    wal, per_key = maps.take_records()
    assert maps.pending_count == 0 and maps.in_flight_count == 1
    assert amounts.get("c1") == Decimal("12.50")  # in flight: not in the table yet
    assert table.data == {}
    log_all(table, wal)
    table.deliver()
    log_all(table, per_key)
    table.deliver()
    assert table.data[b"ledger.amounts\x00c1"] == b'"12.50"'
    maps.settle()
    assert maps.in_flight_count == 0
    assert amounts.get("c1") == Decimal("12.50")  # from the table, decoded
    assert amounts.get("c2") is None


def test_a_pending_write_hides_the_one_in_flight_which_hides_the_table() -> None:
    table = FakeLogTable()
    maps = TableMaps(table)
    counts = maps.open("ledger.counts", COUNT)
    table.data[b"ledger.counts\x00a"] = b"1"
    assert counts.get("a") == 1
    counts.put("a", 2)
    maps.take_records()
    assert counts.get("a") == 2
    counts.put("a", 3)
    assert counts.get("a") == 3
    counts.delete("a")
    assert counts.get("a") is None


def test_a_delete_hides_the_stored_value_and_reaches_the_table_as_a_tombstone() -> None:
    table = FakeLogTable(immediate=True)
    maps = TableMaps(table)
    counts = maps.open("ledger.counts", COUNT)
    counts.put("a", 1)
    flush(maps, table)
    counts.delete("a")
    assert counts.get("a") is None
    assert dict(counts.items()) == {}
    wal, per_key = maps.take_records()
    assert per_key == [Record(b"ledger.counts\x00a", None)]
    assert counts.get("a") is None  # the delete in flight still hides the stored value
    log_all(table, wal + per_key)
    maps.settle()
    assert b"ledger.counts\x00a" not in table.data and counts.get("a") is None


def test_the_same_name_opens_the_same_map() -> None:
    maps = TableMaps(FakeLogTable())
    first = maps.open("timeline.texts", TEXTS)
    first.put("k", ("a", "b"))
    assert maps.open("timeline.texts", TEXTS) is first
    assert maps.open("timeline.texts", TEXTS).get("k") == ("a", "b")


def test_a_name_holding_nul_or_empty_is_refused() -> None:
    maps = TableMaps(FakeLogTable())
    for name in ("", "a\x00b"):
        with pytest.raises(StateTableError):
            maps.open(name, COUNT)


def test_items_merge_the_table_in_flight_and_pending_writes_of_one_map_only() -> None:
    table = FakeLogTable(immediate=True)
    maps = TableMaps(table)
    counts = maps.open("c", COUNT)
    other = maps.open("c.more", COUNT)  # a name the first one is a prefix of
    for key, value in {"stored": 1, "stored-gone": 2, "stored-changed": 3}.items():
        counts.put(key, value)
    other.put("x", 9)
    flush(maps, table)
    counts.put("flying", 4)
    counts.delete("stored-gone")
    maps.take_records()  # in flight, not delivered (immediate applies to log() only)
    counts.put("pending", 5)
    counts.put("stored-changed", 30)
    counts.delete("flying")
    counts.put("flying", 40)
    entries = list(counts.items())
    assert sorted(entries) == [
        ("flying", 40),
        ("pending", 5),
        ("stored", 1),
        ("stored-changed", 30),
    ]
    assert len(entries) == len(dict(entries))  # each key once
    assert dict(other.items()) == {"x": 9}


def test_items_do_not_depend_on_the_order_writes_were_made_in() -> None:
    def build(order: list[tuple[str, int]]) -> dict[str, int]:
        table = FakeLogTable(immediate=True)
        maps = TableMaps(table)
        counts = maps.open("c", COUNT)
        for index, (key, value) in enumerate(order):
            counts.put(key, value)
            if index % 2:
                flush(maps, table)
        return dict(counts.items())

    writes = [(f"k{i}", i) for i in range(7)]
    assert build(writes) == build(list(reversed(writes))) == dict(writes)


def test_writes_of_a_key_coalesce_and_the_last_one_wins() -> None:
    table = FakeLogTable()
    maps = TableMaps(table)
    counts = maps.open("c", COUNT)
    texts = maps.open("t", TEXTS)
    counts.put("a", 1)
    counts.put("a", 2)
    counts.delete("b")
    counts.put("b", 3)
    texts.put("x", ("one",))
    texts.delete("x")
    assert maps.pending_count == 3
    wal, per_key = maps.take_records()
    assert sorted(per_key) == sorted(
        [Record(b"c\x00a", b"2"), Record(b"c\x00b", b"3"), Record(b"t\x00x", None)]
    )
    found = find_wal(wal)
    assert found.writes is not None and sorted(found.writes) == sorted(per_key)


def test_nothing_pending_takes_no_records_and_no_sequence_number() -> None:
    maps = TableMaps(FakeLogTable())
    assert maps.take_records() == ([], [])
    maps.open("c", COUNT).put("a", 1)
    wal, _ = maps.take_records()
    assert find_wal(wal).sequence == 0


# -- the wal ------------------------------------------------------------------------


def test_the_wal_framing_reads_back_every_write_deletes_and_empty_values_included() -> None:
    writes = [Record(b"c\x00a", b"1"), Record(b"c\x00gone", None), Record(b"t\x00empty", b"")]
    found = find_wal(encode_wal(7, writes))
    assert found.writes == writes
    assert found.sequence == found.latest_sequence == 7


def test_a_wal_past_a_part_size_is_split_and_reads_back_whole() -> None:
    big = bytes(range(256)) * 2800  # 700 KiB
    writes = [Record(b"c\x00small", b"x"), Record(b"c\x00big", big), Record(b"c\x00gone", None)]
    parts = encode_wal(3, writes)
    assert len(parts) == 2
    assert all(record.value is not None and len(record.value) <= WAL_PART_BYTES for record in parts)
    assert [record.key for record in parts] == [wal_key(1, 0), wal_key(1, 1)]
    assert find_wal(reversed(parts)).writes == writes


def test_recovery_after_a_crash_between_the_wal_and_the_per_key_records() -> None:
    """The wal delivered, one per-key record of three: the restarted worker's maps
    read the whole flush, and its next flush leaves the table as the full one had."""
    expected = FakeLogTable(immediate=True)
    crashed = FakeLogTable()
    for table in (expected, crashed):
        maps = TableMaps(table)
        counts, amounts = maps.open("c", COUNT), maps.open("m", MONEY)
        counts.put("kept", 1)
        counts.put("gone", 2)
        flush(maps, table)
        counts.put("new", 3)
        counts.delete("gone")
        amounts.put("x", Decimal("0.10"))
        wal, per_key = maps.take_records()
        log_all(table, wal)
        table.deliver()
        log_all(table, per_key)
        table.deliver(1)  # only the first per-key record (immediate: all)
    crashed.crash()
    assert map_entries(crashed) != map_entries(expected)

    restarted = TableMaps(crashed)
    assert restarted.recover() == 2
    counts, amounts = restarted.open("c", COUNT), restarted.open("m", MONEY)
    assert dict(counts.items()) == {"kept": 1, "new": 3}
    assert counts.get("gone") is None and amounts.get("x") == Decimal("0.10")
    flush(restarted, crashed)
    assert map_entries(crashed) == map_entries(expected)
    assert restarted.next_sequence == 3  # after the two flushes' 0 and 1


def crashed_after_the_wal(table: FakeLogTable) -> None:
    """A flush of ``c: a = 1`` whose wal was delivered, and the worker died before its
    per-key records were sent."""
    maps = TableMaps(table)
    maps.open("c", COUNT).put("a", 1)
    wal, _ = maps.take_records()
    log_all(table, wal)
    table.deliver()
    table.crash()


def test_recovery_pends_writes_of_maps_opened_after_it() -> None:
    table = FakeLogTable()
    crashed_after_the_wal(table)
    restarted = TableMaps(table)
    assert restarted.recover() == 1 and restarted.pending_count == 1
    assert restarted.open("c", COUNT).get("a") == 1
    flush(restarted, table)
    assert map_entries(table) == {b"c\x00a": b"1"}


def test_recovery_never_replaces_a_later_pending_write() -> None:
    table = FakeLogTable()
    crashed_after_the_wal(table)
    restarted = TableMaps(table)
    restarted.open("c", COUNT).put("a", 5)
    assert restarted.recover() == 0
    assert restarted.open("c", COUNT).get("a") == 5


def test_recovery_ignores_a_wal_not_all_delivered() -> None:
    table = FakeLogTable()
    maps = TableMaps(table, wal_part_bytes=64)
    counts = maps.open("c", COUNT)
    counts.put("before", 1)
    flush(maps, table)
    for index in range(10):
        counts.put(f"k{index}", index)
    wal, _ = maps.take_records()
    assert len(wal) > 2
    log_all(table, wal)
    table.deliver(len(wal) - 1)  # the last part never delivered
    table.crash()
    restarted = TableMaps(table, wal_part_bytes=64)
    assert restarted.recover() == 0 and restarted.pending_count == 0
    assert dict(restarted.open("c", COUNT).items()) == {"before": 1}
    assert restarted.next_sequence == 2  # after the incomplete wal's sequence 1


def test_a_flush_never_overwrites_the_wal_of_the_flush_before() -> None:
    """A flush whose per-key records failed half way, then discarded: its writes are
    pending again; the next flush's wal is delivered in part only, and the worker
    dies. The first flush's wal is still whole, so no half of it is left applied."""
    table = FakeLogTable()
    maps = TableMaps(table, wal_part_bytes=40)
    counts = maps.open("c", COUNT)
    counts.put("a", 1)
    counts.put("b", 2)
    wal, per_key = maps.take_records()
    log_all(table, wal)
    table.deliver()
    log_all(table, per_key)
    table.deliver(1)
    table.crash()  # the second per-key record was lost
    assert maps.discard() == 1
    assert dict(counts.items()) == {"a": 1, "b": 2}
    counts.put("c", 3)
    wal, _ = maps.take_records()
    assert len(wal) >= 2
    log_all(table, wal)
    table.deliver(1)  # the first part only
    table.crash()
    restarted = TableMaps(table, wal_part_bytes=40)
    assert restarted.recover() == 1
    assert dict(restarted.open("c", COUNT).items()) == {"a": 1, "b": 2}


def test_a_wal_slots_older_parts_past_the_new_count_are_tombstoned() -> None:
    table = FakeLogTable(immediate=True)
    maps = TableMaps(table, wal_part_bytes=64)
    counts = maps.open("c", COUNT)
    for index in range(10):
        counts.put(f"k{index}", index)
    flush(maps, table)  # sequence 0: slot 0, several parts
    slot0 = sorted(key for key, _ in table.scan(wal_key(0, 0)[:-4]))
    assert len(slot0) > 2
    counts.put("a", 1)
    flush(maps, table)  # sequence 1: slot 1
    counts.put("b", 2)
    wal, per_key = maps.take_records()  # sequence 2: slot 0, one part
    assert [record.key for record in wal] == [wal_key(0, 0)]
    assert sorted(record.key for record in per_key if record.value is None) == slot0[1:]
    log_all(table, wal + per_key)
    maps.settle()
    assert sorted(key for key, _ in table.scan(wal_key(0, 0)[:-4])) == [wal_key(0, 0)]
    assert TableMaps(table).recover() == 0  # the complete latest wal is all in the table


def test_discard_drops_pending_and_in_flight_writes() -> None:
    table = FakeLogTable(immediate=True)
    maps = TableMaps(table)
    counts = maps.open("c", COUNT)
    counts.put("a", 1)
    flush(maps, table)
    table.immediate = False
    counts.put("a", 2)
    maps.take_records()  # never delivered
    counts.put("b", 3)
    assert maps.discard() == 0
    assert maps.pending_count == maps.in_flight_count == 0
    assert dict(counts.items()) == {"a": 1}


def test_settle_clears_the_writes_in_flight_and_a_flush_waits_for_it() -> None:
    table = FakeLogTable(immediate=True)
    maps = TableMaps(table)
    counts = maps.open("c", COUNT)
    counts.put("a", 1)
    wal, per_key = maps.take_records()
    counts.put("b", 2)
    with pytest.raises(StateTableError, match="settled"):
        maps.take_records()
    log_all(table, wal + per_key)
    maps.settle()
    assert maps.in_flight_count == 0 and maps.pending_count == 1
    table.data[b"c\x00a"] = b"5"  # what the table holds is read now, not the write
    assert counts.get("a") == 5
    assert maps.take_records()[1] == [Record(b"c\x00b", b"2")]


# -- FaustLogTable on Faust's own stores ------------------------------------------------


@pytest.fixture
def faust_table(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    store = request.param
    app = faust.App(f"state-{store}", store=f"{store}://", datadir=str(tmp_path))
    options = ROCKSDB_OPTIONS if store == "rocksdb" else None
    table = app.Table("state", partitions=1, key_type=bytes, value_type=bytes, options=options)
    yield table
    if store == "rocksdb":
        table.data._dbs.clear()


@pytest.mark.parametrize("faust_table", ["rocksdb", "memory"], indirect=True)
async def test_faust_log_table_keeps_deletes_and_scans_a_prefix(faust_table: Any) -> None:
    topic = faust_table.changelog_topic.get_topic_name()
    producer = BatchProducer(topic)
    logged = FaustLogTable(faust_table, lambda: producer, batch_bytes=200)
    sending = asyncio.ensure_future(
        logged.send([(key, key.upper()) for key in (b"a\x00x", b"a\x00y", b"ab\x00z", b"b\x00w")])
    )
    await asyncio.sleep(0.01)
    assert list(logged.scan(b"a\x00")) == []  # not delivered: not kept
    await producer.delivering(sending)
    assert sorted(logged.scan(b"a\x00")) == [(b"a\x00x", b"A\x00X"), (b"a\x00y", b"A\x00Y")]
    await producer.delivering(logged.send([(b"a\x00x", None)]))
    assert sorted(logged.scan(b"a\x00")) == [(b"a\x00y", b"A\x00Y")]
    assert logged.data.get(b"a\x00x") is None
    persisted = faust_table.data.persisted_offset(TP(topic, 0))
    assert persisted in (None, 4)  # rocksdb: the last record's offset; memory: none kept
    logged.keep(b"b\x00w", None, 10)
    assert list(logged.scan(b"b")) == []
    if persisted is not None:  # rocksdb
        assert faust_table.data.persisted_offset(TP(topic, 0)) == 10
        assert list(logged.scan(b"__faust")) == []  # Faust's offset record is not a record


def test_a_sorted_scan_stops_at_the_first_key_past_its_prefix() -> None:
    def sorted_store() -> Iterator[tuple[bytes, bytes]]:
        yield b"a\x00x", b"1"
        yield b"a\x00y", b"2"
        yield b"b\x00z", b"3"
        raise AssertionError("read past the prefix")

    found = prefixed_items(sorted_store(), b"a\x00", b"__faust\x00offset__")
    assert list(found) == [(b"a\x00x", b"1"), (b"a\x00y", b"2")]


class ChangelogEvent:
    def __init__(self, message: Message) -> None:
        self.message = message
        self.key, self.value = message.key, message.value


@pytest.mark.parametrize("faust_table", ["rocksdb", "memory"], indirect=True)
async def test_faust_recovery_applies_a_changelog_tombstone_as_a_delete(faust_table: Any) -> None:
    """What the table recovery does with the changelog's records: a record without a
    value deletes its key (faust.stores.rocksdb.Store.apply_changelog_batch)."""
    logged = FaustLogTable(faust_table)
    topic = faust_table.changelog_topic.get_topic_name()
    records = [(b"c\x00a", b"1"), (b"c\x00b", b"2"), (b"c\x00a", None)]
    batch = [
        ChangelogEvent(Message(topic, 0, offset, 0.0, 0, [], key, value, None))
        for offset, (key, value) in enumerate(records)
    ]
    faust_table.apply_changelog_batch(batch)
    assert sorted(logged.scan(b"c\x00")) == [(b"c\x00b", b"2")]


@pytest.mark.parametrize("faust_table", ["rocksdb"], indirect=True)
async def test_table_maps_on_a_rocksdb_table(faust_table: Any) -> None:
    producer = BatchProducer(faust_table.changelog_topic.get_topic_name())
    logged = FaustLogTable(faust_table, lambda: producer, batch_bytes=200)
    maps = TableMaps(logged)
    amounts = maps.open("ledger.amounts", MONEY)
    amounts.put("a", Decimal("1.10"))
    amounts.put("b", Decimal("2.20"))
    for step in range(2):
        wal, per_key = maps.take_records()
        await producer.delivering(logged.send(wal))
        await producer.delivering(logged.send(per_key))
        maps.settle()
        if step == 0:
            amounts.delete("a")
            amounts.put("c", Decimal("3.30"))
    assert dict(amounts.items()) == {"b": Decimal("2.20"), "c": Decimal("3.30")}
    assert faust_table.data.get(b"ledger.amounts\x00a") is None
    restarted = TableMaps(logged)
    assert restarted.recover() == 0
    assert restarted.open("ledger.amounts", MONEY).get("c") == Decimal("3.30")


@pytest.mark.parametrize("faust_table", ["memory"], indirect=True)
async def test_a_send_puts_its_last_record_in_a_batch_of_its_own(faust_table: Any) -> None:
    """Tansu's reported end is its last batch's base + 1: the last record of a send goes
    out only once the broker has the others, so it is never batched with them."""
    producer = BatchProducer(faust_table.changelog_topic.get_topic_name())
    logged = FaustLogTable(faust_table, lambda: producer, batch_bytes=200)
    sending = asyncio.ensure_future(logged.send([(b"a", b"1"), (b"b", b"2"), (b"c", b"3")]))
    await asyncio.sleep(0.01)
    assert [batch.record_count() for batch in producer.undelivered()] == [2]
    producer.deliver()
    await asyncio.sleep(0.01)
    assert [batch.record_count() for batch in producer.undelivered()] == [1]
    assert not sending.done() and logged.get(b"c") is None
    producer.deliver()
    await asyncio.wait_for(sending, 1)
    assert logged.get(b"c") == b"3"


@pytest.mark.parametrize("faust_table", ["rocksdb"], indirect=True)
async def test_the_rocksdb_store_takes_the_sized_options(faust_table: Any) -> None:
    options = faust_table.data.rocksdb_options  # what Faust opens each partition with
    assert options.block_cache_size == ROCKSDB_OPTIONS["block_cache_size"] == 16 * 1024 * 1024
    assert options.write_buffer_size == 8 * 1024 * 1024
    assert options.bloom_filter_size == BLOOM_BITS_PER_KEY == 10
