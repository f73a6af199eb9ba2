"""Ledger-log records: a facts batch logged again after a crash never replaces the first."""

from __future__ import annotations

from streams.pipeline.ledger_log import BAND_KEY, LOG_RECORD_EVENTS, log_records, next_facts_offset


def events(prefix: str, count: int) -> list[bytes]:
    return [f'{{"event_id":"{prefix}{i}"}}'.encode() for i in range(count)]


def test_a_batch_logged_again_from_the_same_offset_keeps_both_records() -> None:
    """The soak's finding: the dead owner logged 35 events for the batch at facts offset
    253; the next owner read from 253 again and logged the 17 new to it. A table that
    kept one value per key lost the 35 on the next rebuild."""
    table: dict[bytes, bytes] = {}
    table.update(log_records(253, events("dead-owner-", 35)))
    table.update(log_records(253, events("next-owner-", 17)))
    logged = [line for value in table.values() for line in value.split(b"\n")]
    assert len(logged) == 35 + 17
    assert set(logged) == set(events("dead-owner-", 35)) | set(events("next-owner-", 17))


def test_records_of_one_offset_sort_in_the_order_they_were_written() -> None:
    """A rebuild must apply them in the order the ledger did: channel admission past the
    cap depends on it."""
    keys = [key for n in range(50) for key, _value in log_records(253, events(f"w{n}-", 1))]
    assert sorted(keys) == keys
    assert len(set(keys)) == 50


def test_records_are_split_and_sort_by_facts_offset_then_part() -> None:
    many = events("e", 2 * LOG_RECORD_EVENTS + 1)
    records = log_records(7, many) + log_records(12, events("f", 1))
    assert [len(value.split(b"\n")) for _key, value in records] == [
        LOG_RECORD_EVENTS, LOG_RECORD_EVENTS, 1, 1,
    ]  # fmt: skip
    keys = [key for key, _value in records]
    assert sorted(keys) == keys  # a rebuild applies them in this order
    assert b"\n".join(value for _key, value in records[:3]) == b"\n".join(many)
    assert all(BAND_KEY not in key for key in keys)


def test_nothing_accepted_writes_nothing() -> None:
    assert log_records(5, []) == []


def test_next_facts_offset_follows_the_last_logged_message() -> None:
    keys = [key for key, _value in log_records(41, events("a", 2)) + log_records(9, events("b", 1))]
    assert next_facts_offset([*keys, BAND_KEY]) == 42
    assert next_facts_offset([BAND_KEY]) is None
    assert next_facts_offset([b"00000000000000000007-00000"]) == 8  # the earlier key format
