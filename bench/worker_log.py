"""What a worker's log says about a takeover: when it was assigned a topic's partitions,
whether it followed the changelog as a standby (Faust's standby partitions, or revpulse's
own follower, streams.pipeline.standby), and how many changelog records its table
recovery read (Faust logs the changelog's highwater and where its reading starts)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from streams.pipeline.standby import STARTED as FOLLOWING

# Faust's and mode's records, then revpulse's own (streams.cli's logging format)
HEADERS = (
    re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\] \[\d+\] \[\w+\] (.*)$"),
    re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) [A-Z]+ (.*)$"),
)
ASSIGNED = "Setting newly assigned partitions"
STANDBY_STARTED = "[^---Recovery]: Starting standby partitions..."  # Faust's own standby
ACTIVE_HIGHWATER = "[^---Recovery]: Highwater for active changelog partitions:"
ACTIVE_START = "[^---Recovery]: active offsets at start of reading:"
# the ledger stage's own read of the changelog's last batch, past Faust's recovery
LAST_BATCH = re.compile(r"kept the (\d+) records of its last batch")


@dataclass(frozen=True)
class Entry:
    """One log record: its wall-clock time (the worker's local time), message, and the
    lines that follow it (Faust's tables)."""

    at: float
    message: str
    body: tuple[str, ...]


def entries(text: str) -> list[Entry]:
    found: list[Entry] = []
    at, message, body = 0.0, "", []
    for line in text.splitlines():
        header = next((match for pattern in HEADERS if (match := pattern.match(line))), None)
        if header is None:
            body.append(line)
            continue
        if message:
            found.append(Entry(at, message, tuple(body)))
        stamp = dt.datetime.strptime(header.group(1), "%Y-%m-%d %H:%M:%S,%f")
        at, message, body = stamp.timestamp(), header.group(2), []
    if message:
        found.append(Entry(at, message, tuple(body)))
    return found


def table_value(entry: Entry, topic: str) -> int | None:
    """The last column of ``topic``'s row in the table logged with ``entry``."""
    for line in entry.body:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0] == topic:
            return int(cells[-1])
    return None


@dataclass(frozen=True)
class TakeoverLog:
    assigned_at: float | None  # the first assignment that includes the owned topic
    standby_started: bool  # Faust started reading standby partitions
    # changelog records the active table recovery read: from where the first recovery
    # started (the store's offset) to the last recovery's highwater; None: none logged
    recovery_records: int | None
    last_batch_records: int  # read directly by the ledger stage after the recovery


def read_takeover(text: str, owned_topic: str, changelog: str) -> TakeoverLog:
    """From a log written since the moment of interest: when ``owned_topic`` was assigned
    to this worker, and the changelog records its active recoveries of ``changelog``
    read (several when a rebalance cuts one short: counted once)."""
    assigned_at: float | None = None
    standby = False
    last_batch = 0
    first_start: int | None = None
    highwater: int | None = None
    last_highwater: int | None = None
    for entry in entries(text):
        if entry.message.startswith(ASSIGNED) and assigned_at is None:
            if any(f"| {owned_topic} " in line for line in entry.body):
                assigned_at = entry.at
        elif entry.message.startswith(STANDBY_STARTED) or (
            FOLLOWING in entry.message and f"{changelog}[" in entry.message
        ):
            standby = True
        elif entry.message.startswith(ACTIVE_HIGHWATER):
            highwater = table_value(entry, changelog)
        elif entry.message.startswith(ACTIVE_START) and highwater is not None:
            start = table_value(entry, changelog)
            if start is not None:
                first_start = start if first_start is None else first_start
                last_highwater = highwater
            highwater = None
        elif match := LAST_BATCH.search(entry.message):
            last_batch += int(match.group(1))
    records = None
    if first_start is not None and last_highwater is not None:
        records = max(0, last_highwater - first_start)
    return TakeoverLog(assigned_at, standby, records, last_batch)
