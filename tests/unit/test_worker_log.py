"""bench.worker_log reads a takeover from a worker's log (Faust's tables included)."""

from __future__ import annotations

import datetime as dt

from bench.worker_log import read_takeover

CHANGELOG = "bench-1-ledger-state-changelog"
FACTS = "bench-1-facts"


def stamp(second: int) -> str:
    return f"[2026-12-04 04:37:{second:02d},250] [4820] [INFO]"


def assigned(second: int, *topics: str) -> str:
    rows = "\n".join(f"| {topic:<37} | {{0}}        |" for topic in topics)
    return (
        f"{stamp(second)} Setting newly assigned partitions \n"
        "+Topic Partition Set--------------------+------------+\n"
        f"{rows}\n"
        "+---------------------------------------+------------+ for group bench-1 \n"
    )


def recovery(second: int, highwater: int, start: int) -> str:
    return (
        f"{stamp(second)} [^---Recovery]: Highwater for active changelog partitions:\n"
        "| topic                                 | partition | highwater |\n"
        f"| {CHANGELOG} | 0         | {highwater}    |\n"
        f"{stamp(second)} [^---Recovery]: active offsets at start of reading:\n"
        "| topic                                 | partition | offset |\n"
        f"| {CHANGELOG} | 0         | {start} |\n"
    )


def at(second: int) -> float:
    return dt.datetime(2026, 12, 4, 4, 37, second, 250_000).timestamp()


def test_a_takeover_after_standby_reading() -> None:
    text = (
        assigned(10, f"{CHANGELOG}", "bench-1-events")
        + f"{stamp(11)} [^---Recovery]: Starting standby partitions... \n"
        + assigned(25, CHANGELOG, FACTS)
        + recovery(25, 1200, 1150)
        + "2026-12-04 04:37:26,001 WARNING streams.pipeline.ledger_stage: the table "
        "recovery stopped short of the changelog's end: kept the 3 records of its last "
        "batch it had not read\n"
    )
    log = read_takeover(text, FACTS, CHANGELOG)
    assert log.standby_started
    assert log.assigned_at == at(25)  # the first assignment with the facts topic
    assert log.recovery_records == 50
    assert log.last_batch_records == 3


def test_the_workers_own_standby_follower_counts_as_standby_reading() -> None:
    follows = (
        f"2026-12-04 04:37:11,300 INFO streams.pipeline.standby: following changelog "
        f"partitions as a standby: {CHANGELOG}[0], bench-1-id-gate-changelog[1]\n"
    )
    log = read_takeover(assigned(10, "bench-1-events") + follows + assigned(25, FACTS),
                        FACTS, CHANGELOG)  # fmt: skip
    assert log.standby_started
    # following only other tables' partitions is no standby of the ledger's
    others = follows.replace(f"{CHANGELOG}[0], ", "")
    assert not read_takeover(assigned(10, FACTS) + others, FACTS, CHANGELOG).standby_started


def test_a_recovery_cut_short_counts_once_from_the_first_start() -> None:
    text = assigned(20, FACTS) + recovery(20, 900, -1) + recovery(24, 1000, 400)
    log = read_takeover(text, FACTS, CHANGELOG)
    assert not log.standby_started
    assert log.recovery_records == 1001  # -1 (nothing held) to 1000


def test_nothing_assigned_nothing_read() -> None:
    log = read_takeover(assigned(3, CHANGELOG) + "stray line\n", FACTS, CHANGELOG)
    assert log.assigned_at is None
    assert log.recovery_records is None and log.last_batch_records == 0
