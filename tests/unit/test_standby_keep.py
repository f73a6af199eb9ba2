"""What a standby follower keeps of the changelog records it read (FaustLogTable on a
real RocksDB database, raw bytes, as Faust's rocksdb store holds a partition)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import rocksdict
from aiokafka import ConsumerRecord
from faust.types import TP

from streams.pipeline.log_table import FaustLogTable

CHANGELOG = "app-ledger-state-changelog"
OFFSET_KEY = b"__faust\x00offset__"


class PartitionStore:
    """The part of Faust's rocksdb store FaustLogTable uses, on one real database."""

    offset_key = OFFSET_KEY

    def __init__(self, path: Path) -> None:
        self.db = rocksdict.Rdict(str(path), options=rocksdict.Options(raw_mode=True))

    def _db_for_partition(self, _partition: int) -> rocksdict.Rdict:
        return self.db

    def set_persisted_offset(self, _tp: TP, offset: int) -> None:
        self.db.put(OFFSET_KEY, str(offset).encode())

    def persisted_offset(self, _tp: TP) -> int | None:
        held = self.db.get(OFFSET_KEY)
        return None if held is None else int(held)


def table_on(store: PartitionStore) -> FaustLogTable:
    topic = type("Topic", (), {"get_topic_name": lambda _self: CHANGELOG})()
    return FaustLogTable(type("Table", (), {"data": store, "changelog_topic": topic})())


def record(offset: int, key: bytes, value: bytes | None) -> Any:
    return ConsumerRecord(CHANGELOG, 0, offset, 0, 0, key, value, None, 0, 0, [])


def test_followed_records_are_kept_and_the_offset_moves_past_them(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path / "db")
    table = table_on(store)
    assert table.persisted_offset() is None
    table.keep_followed([record(0, b"a", b"1"), record(1, b"b", b"2")], highwater=2)
    table.keep_followed([record(2, b"a", b"3"), record(3, b"b", None)], highwater=4)
    assert table.get(b"a") == b"3" and table.get(b"b") is None  # later wins; tombstone
    assert table.persisted_offset() == 3


def test_the_offset_never_passes_the_end_the_broker_reports(tmp_path: Path) -> None:
    """Tansu reports its last batch's base offset + 1 as the end; Faust's recovery refuses
    a persisted offset past it, so the records past it are kept but read again."""
    store = PartitionStore(tmp_path / "db")
    table = table_on(store)
    table.keep_followed([record(5, b"a", b"1"), record(6, b"b", b"2")], highwater=6)
    assert table.get(b"b") == b"2"
    assert table.persisted_offset() == 5
