"""``revpulse dlq`` lists the newest dead letters first, across partitions."""

from __future__ import annotations

from streams.kafka.dead_letters import DeadLetter, newest_first


def letter(partition: int, offset: int, timestamp_ms: int) -> DeadLetter:
    return DeadLetter(partition, offset, timestamp_ms, "r", None, None, None, b"{}")


def test_newest_first_across_partitions() -> None:
    letters = [letter(0, 0, 100), letter(1, 0, 300), letter(0, 1, 200), letter(1, 1, 400)]
    newest = newest_first(letters, 3)
    assert [(x.partition, x.offset) for x in newest] == [(1, 1), (1, 0), (0, 1)]


def test_same_time_is_ordered_by_place() -> None:
    letters = [letter(0, 5, 100), letter(2, 1, 100), letter(0, 6, 100)]
    assert [(x.partition, x.offset) for x in newest_first(letters, 10)] == [(2, 1), (0, 6), (0, 5)]
