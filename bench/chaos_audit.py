"""After a scenario: where every sent record went, and whether Redis equals the oracle."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from bench.chaos_rig import Sent
from bench.oracle import compute_oracle
from models.dedup import SEEN_ID
from models.errors import InvalidEventError, RevpulseError
from models.events import Event, canonical_digest, event_to_json, parse_canonical_event
from models.keyed import COUNT
from models.ledger import FORGOTTEN
from models.series import MetricPoint
from sinks.readback import points_on, read_current, read_state
from sinks.redis_keys import RedisKeys
from streams.pipeline.gate_stage import partition_prefix
from streams.pipeline.state_table import map_prefix, table_from_changelog
from streams.settings import Settings

APPLIED_IDS = map_prefix("ledger.ids")  # event_id -> the digest of the version applied
LEDGER_COUNTS = map_prefix("ledger.counts")
GATE_IDS = map_prefix("gate.ids")  # the same, per by-id partition in the id-gate table
GATE_COUNTS = map_prefix("gate.counts")


async def read_topic(bootstrap: str, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of every partition of ``topic``, from the start to its current end."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        places = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not places:
            return []
        consumer.assign(places)
        await consumer.seek_to_beginning(*places)
        ends = await consumer.end_offsets(places)
        found: list[ConsumerRecord[bytes, bytes]] = []
        while [tp for tp in places if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                found.extend(records)
        return found
    finally:
        await consumer.stop()


def _event_id(value: bytes | None) -> str | None:
    try:
        found = json.loads(value or b"")
    except (ValueError, RecursionError):
        return None
    event_id = found.get("event_id") if isinstance(found, dict) else None
    return event_id if isinstance(event_id, str) else None


def _canonical(value: bytes) -> str | None:
    try:
        return event_to_json(parse_canonical_event(value))
    except InvalidEventError:
        return None


@dataclass
class DeadLetter:
    value: bytes | None
    reason: str
    source: tuple[int, int] | None  # (partition, offset) on the events topic, if the intake's
    event_id: str | None
    canonical: str | None
    claimed: bool = False


@dataclass
class Outcome:
    """What the topics show: applied events (by id, with the digest of the version applied,
    from the ledger-state changelog), how many the ledger counted, dead letters and late
    events."""

    applied: dict[str, bytes] = field(default_factory=dict)
    accepted_count: int = 0
    dead: list[DeadLetter] = field(default_factory=list)
    late: set[str] = field(default_factory=set)


async def read_state_table(settings: Settings) -> tuple[int, dict[bytes, bytes]]:
    """The ledger-state changelog's record count, and what a table read from it holds."""
    records = await read_topic(settings.kafka_bootstrap, settings.changelog_topic())
    return len(records), table_from_changelog((record.key, record.value) for record in records)


async def read_gate_tables(settings: Settings) -> list[dict[bytes, bytes]]:
    """What each partition of the id-gate table holds, read from its changelog."""
    records = await read_topic(settings.kafka_bootstrap, settings.gate_changelog_topic())
    tables = []
    for partition in sorted({record.partition for record in records}):
        prefix = partition_prefix(partition)
        tables.append(
            table_from_changelog(
                (record.key.removeprefix(prefix), record.value)
                for record in records
                if record.partition == partition and record.key is not None
            )
        )
    return tables


def accepted_count(
    table: dict[bytes, bytes], name: str = "accepted", counts: bytes = LEDGER_COUNTS
) -> int:
    """The ledger's own count of the events it applied (or of another ``name``)."""
    counted = table.get(counts + name.encode())
    return 0 if counted is None else COUNT.decode(counted)


async def read_outcome(settings: Settings) -> Outcome:
    outcome = Outcome()
    bootstrap = settings.kafka_bootstrap
    _records, table = await read_state_table(settings)
    gates = await read_gate_tables(settings)
    forgotten = accepted_count(table, FORGOTTEN)
    for ids, held in [(APPLIED_IDS, table)] + [(GATE_IDS, gate) for gate in gates]:
        for key, digest in held.items():
            if key.startswith(ids):
                outcome.applied[key.removeprefix(ids).decode()] = SEEN_ID.decode(digest).digest
    forgotten += sum(accepted_count(gate, FORGOTTEN, GATE_COUNTS) for gate in gates)
    # ids forgotten past the dedup horizon were applied once each
    outcome.accepted_count = accepted_count(table) - forgotten
    for record in await read_topic(bootstrap, settings.dead_letter_topic):
        headers = {name: value.decode(errors="replace") for name, value in record.headers or []}
        source = None
        if headers.get("revpulse-source-topic") == settings.events_topic:
            try:
                source = (
                    int(headers["revpulse-source-partition"]),
                    int(headers["revpulse-source-offset"]),
                )
            except (KeyError, ValueError):
                source = None
        value = record.value
        letter_canonical = _canonical(value) if value else None
        outcome.dead.append(
            DeadLetter(
                value,
                headers.get("revpulse-reason", ""),
                source,
                _event_id(value),
                letter_canonical,
            )
        )
    for record in await read_topic(bootstrap, settings.late_topic):
        if (event_id := _event_id(record.value)) is not None:
            outcome.late.add(event_id)
    return outcome


@dataclass
class Tally:
    sent: int = 0
    accounted: int = 0
    lost: int = 0
    doubled: int = 0
    misrouted: int = 0
    problems: Counter[str] = field(default_factory=Counter)

    def wrong(self, what: str, misrouted: bool = True) -> None:
        self.problems[what] += 1
        if misrouted:
            self.misrouted += 1
        else:
            self.lost += 1


def _claim(outcome: Outcome, sent: Sent, canonical: str | None) -> DeadLetter | None:
    """The dead letter of ``sent``: by its place on the events topic, else by id and content."""
    for letter in outcome.dead:
        if letter.claimed:
            continue
        by_place = sent.offset is not None and letter.source == (sent.partition, sent.offset)
        by_content = (
            letter.source is None
            and sent.event_id is not None
            and letter.event_id == sent.event_id
            and (canonical is None or letter.canonical in (None, canonical))
        )
        if by_place or by_content:
            letter.claimed = True
            return letter
    return None


def tally(log: list[Sent], outcome: Outcome) -> Tally:
    """Each sent record against what it should have become (see bench/README.md, "Chaos")."""
    result = Tally()
    for sent in log:
        result.sent += 1
        canonical = event_to_json(sent.event) if sent.event is not None else None
        digest = canonical_digest(sent.event) if sent.event is not None else None
        applied = outcome.applied.get(sent.event_id or "")
        if sent.kind == "poison":
            refused = sent.status is not None and 400 <= sent.status < 500
            if refused or _claim(outcome, sent, canonical) is not None:
                result.accounted += 1
            elif applied is not None:
                result.wrong(f"poison applied: {sent.label}")
            else:
                result.wrong(f"poison not found: {sent.label}", misrouted=False)
        elif sent.kind == "conflict":
            if _claim(outcome, sent, canonical) is not None:
                result.accounted += 1
            elif applied is not None and applied == digest:
                result.wrong("conflicting version counted instead of the first")
            elif applied is not None:
                result.wrong("conflicting duplicate not dead-lettered")
            else:
                result.wrong("conflicting duplicate not found", misrouted=False)
        elif sent.status is not None and sent.status != 202:
            result.wrong(f"valid event answered {sent.status}")
        elif applied is not None and (sent.kind == "resend" or applied == digest):
            result.accounted += 1
        elif applied is not None:
            result.wrong("another version counted")
        elif sent.event_id in outcome.late:
            result.wrong("valid event late")
        elif any(letter.event_id == sent.event_id for letter in outcome.dead):
            result.wrong("valid event dead-lettered")
        else:
            result.wrong(f"{sent.label} not applied", misrouted=False)
    # an event applied twice would count twice: the ledger's count past its distinct ids
    result.doubled = max(0, outcome.accepted_count - len(outcome.applied))
    return result


@dataclass
class Comparison:
    equal: bool
    detail: str
    clock: str = ""


def first_versions(log: list[Sent]) -> list[Event]:
    """The valid events in the order sent, each id once: what the oracle counts."""
    seen: set[str] = set()
    events = []
    for sent in log:
        answered = sent.status is None or sent.status == 202
        event = sent.event
        if sent.kind == "valid" and event is not None and answered and event.event_id not in seen:
            seen.add(event.event_id)
            events.append(event)
    return events


def _differing(expected: list[MetricPoint], found: list[MetricPoint]) -> list[str]:
    """Each series that differs, as ``id: oracle value != found value``."""
    want = {p.series_id: p for p in expected}
    have = {p.series_id: p for p in found}
    return [
        f"{sid}: {_shown(want.get(sid))} != {_shown(have.get(sid))}"
        for sid in sorted(want.keys() | have.keys())
        if want.get(sid) != have.get(sid)
    ]


def _shown(point: MetricPoint | None) -> str:
    if point is None:
        return "absent"
    if point.numerator is None:
        return str(point.value)
    return f"{point.value} ({point.numerator}/{point.denominator})"


async def compare(
    settings: Settings, events: list[Event], days: tuple[dt.date, ...], flood: bool = False
) -> Comparison:
    """Current points (for the clock's day) and the stored state read back, against the
    oracle over ``events``. ``days``: the UTC days the clock may be on (the scenario's).
    ``flood``: thousands of channels, so the oracle needs the channel cap, and one day is
    enough (it is slow)."""
    url, keys = settings.redis_url.get_secret_value(), RedisKeys(settings.redis_prefix)
    policy = settings.policy()
    if flood and getattr(policy, "max_channels", None) is None:
        return Comparison(False, "MetricPolicy has no max_channels: no channel cap to compare")
    try:
        current, meta = await read_current(url, keys)
        state = await read_state(url, keys, policy)
    except RevpulseError as error:
        return Comparison(False, f"Redis unreadable: {error}")
    clock_text = meta.get("clock", "")
    if not clock_text:
        return Comparison(False, "nothing published in Redis")
    clock = dt.datetime.fromisoformat(clock_text)
    day = clock.astimezone(dt.UTC).date()
    if day not in days:
        return Comparison(False, f"the metrics clock is at {clock_text}", clock_text)
    checks: list[tuple[str, dt.date, list[MetricPoint]]] = [
        ("current", day, current),
        ("state", day, points_on(state, day)),
    ]
    if not flood:
        later = day + dt.timedelta(days=40)
        checks.append(("state +40 d", later, points_on(state, later)))
    differences = []
    for label, on, found in checks:
        expected = await asyncio.to_thread(compute_oracle, events, on, policy)
        if label == "current":
            expected = [p for p in expected if p.value is not None]
        if wrong := _differing(expected, found):
            differences.append(f"{label}: {len(wrong)} of {len(expected)} differ, e.g. {wrong[0]}")
    return Comparison(not differences, "; ".join(differences), clock_text)


def metric_value(samples: dict[Any, float], name: str) -> float | None:
    values = [value for (sample, _labels), value in samples.items() if sample == name]
    return sum(values) if values else None
