"""The worker's local state: one worker per data directory, a table store kept only
with what the changelog holds, and discarded when the broker lost that changelog."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from faust.types import TP

from streams.errors import StackError
from streams.pipeline.local_state import LocalPosition, check_local_state, hold_data_dir
from streams.pipeline.log_table import FaustLogTable, changelog_end_past_recovery
from tests.unit.pipeline_fakes import BatchProducer

CHANGELOG = TP("app-ledger-log-changelog", 0)


class Store(dict[bytes, bytes]):
    """A table store with Faust's persisted offset and reset."""

    def __init__(self, offset: int | None) -> None:
        super().__init__({b"k": b"v"})
        self.offset = offset
        self.resets = 0

    def persisted_offset(self, tp: TP) -> int | None:
        assert tp == CHANGELOG
        return self.offset

    def reset_state(self) -> None:
        self.clear()
        self.resets += 1

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        assert tp == CHANGELOG
        self.offset = offset


def test_a_store_behind_the_changelog_is_kept_and_reads_the_tail() -> None:
    store = Store(offset=41)
    position = check_local_state(store, CHANGELOG, end_offset=50)
    assert position == LocalPosition(41, 50)
    assert not position.lost_by_broker and position.tail_records == 8
    assert store.resets == 0 and store == {b"k": b"v"}


def test_a_store_past_the_changelog_end_is_discarded() -> None:
    """The broker restarted empty (or shorter): what the store holds is gone from it."""
    for end in (0, 41):
        store = Store(offset=41)
        position = check_local_state(store, CHANGELOG, end_offset=end)
        assert position.lost_by_broker and position.tail_records == end
        assert store.resets == 1 and store == {}


def test_a_store_inside_the_last_batch_is_set_back_to_the_reported_end() -> None:
    """Tansu reports the end as the last batch's base offset + 1 (here 45 + 1, the true
    end 50); Faust refuses a persisted offset past it, so the store's is set back to 45,
    and kept with what it holds."""
    for offset in (45, 49):
        store = Store(offset=offset)
        position = check_local_state(store, CHANGELOG, end_offset=50, reported_end=46)
        assert not position.lost_by_broker
        assert store.offset == 45 and store.resets == 0 and store == {b"k": b"v"}
    store = Store(offset=44)  # before the last batch: as it was
    check_local_state(store, CHANGELOG, end_offset=50, reported_end=46)
    assert store.offset == 44


def test_no_local_store_reads_the_whole_changelog() -> None:
    store = Store(offset=None)
    position = check_local_state(store, CHANGELOG, end_offset=12)
    assert not position.lost_by_broker and position.tail_records == 12
    assert store.resets == 0


def test_a_data_directory_is_held_by_one_worker(tmp_path: Path) -> None:
    held = hold_data_dir(tmp_path / "data")
    try:
        other = subprocess.run(
            [sys.executable, "-c",
             "import sys; from pathlib import Path; "
             "from streams.pipeline.local_state import hold_data_dir; "
             f"hold_data_dir(Path({str(tmp_path / 'data')!r}))"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert other.returncode != 0
        assert "is in use by revpulse worker pid" in other.stderr
        assert "give each worker its own REVPULSE_DATA_DIR" in other.stderr
    finally:
        held.close()
    hold_data_dir(tmp_path / "data").close()  # free again once its holder let go


def test_the_same_process_cannot_hold_it_twice(tmp_path: Path) -> None:
    held = hold_data_dir(tmp_path)
    try:
        with pytest.raises(StackError, match="in use by revpulse worker pid"):
            hold_data_dir(tmp_path)
    finally:
        held.close()


def memory_table() -> Any:
    """What FaustLogTable reads of a Faust table on the memory store."""
    topic = type("Topic", (), {"get_topic_name": lambda _self: CHANGELOG.topic})()
    return type("Table", (), {"data": {b"gone": b"old"}, "changelog_topic": topic})()


async def test_records_are_kept_a_batch_at_a_time_once_the_changelog_has_it() -> None:
    """Full batches, then the last record alone; nothing kept before its delivery."""
    producer = BatchProducer(CHANGELOG.topic)
    table = memory_table()
    records: list[tuple[bytes, bytes | None]] = [(b"k%d" % i, b"v" * 40) for i in range(7)]
    records.append((b"gone", None))
    sending = asyncio.ensure_future(
        FaustLogTable(table, lambda: producer, batch_bytes=200).send(records)
    )
    sizes: list[int] = []
    while not sending.done():
        await asyncio.sleep(0)
        if pending := producer.undelivered():
            assert len(pending) == 1  # the next batch waits for this one
            before = dict(table.data)
            sizes.append(pending[0].record_count())
            assert table.data == before  # sent, not delivered: not kept
            producer.deliver()
    await sending
    assert sizes == [2, 2, 2, 1, 1]  # two 40-byte records fill 200 bytes; the last alone
    assert table.data == {key: value for key, value in records if value is not None}


class Recovery:
    def __init__(self, highwater: int | None) -> None:
        self.active_highwaters = {} if highwater is None else {CHANGELOG: highwater}


class App:
    def __init__(self, highwater: int | None) -> None:
        self.tables = type("Tables", (), {"recovery": Recovery(highwater)})()


async def test_an_empty_changelog_needs_no_read_of_its_end() -> None:
    """Faust found it empty (highwater -1): nothing to read, not even when the broker is
    down; otherwise it is read (here: a broker that is not there)."""
    nowhere = "127.0.0.1:1"
    assert await changelog_end_past_recovery(App(-1), nowhere, CHANGELOG.topic) == ()
    for highwater in (0, None):
        with pytest.raises(StackError, match="unreachable"):
            await changelog_end_past_recovery(App(highwater), nowhere, CHANGELOG.topic)
