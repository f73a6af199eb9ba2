"""The chaos scenarios: what each sends and which fault it injects while it does.

Each scenario gets fresh topics and one worker already ready (``Ctx.crew``); it sends
through ``Ctx.sender``, which logs every acknowledged record with what it should become.
The runner (bench/chaos.py) then waits for the ledger and audits (bench/chaos_audit.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bench.chaos_audit import Outcome, metric_value
from bench.chaos_rig import Crew, Outgoing, Sender, Sent, Servers, json_bytes
from bench.pipeline import Histogram, Samples
from bench.workload import Record, Workload
from models.events import parse_event, parse_event_bytes
from streams.kafka.keys import partition_key
from streams.settings import Settings

METRICS_PAGE_LIMIT_BYTES = 1_000_000
POISON_EVERY = 5  # valid events between two poison records


_STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"chaos {time.monotonic() - _STARTED:5.0f}s: {message}", file=sys.stderr, flush=True)


@dataclass
class Check:
    text: str
    ok: bool


@dataclass
class Ctx:
    name: str
    servers: Servers
    crew: Crew
    settings: Settings
    sender: Sender
    events: int  # valid events to send
    rate: float  # valid events per second in paced traffic
    flood_channels: int
    seed: int
    notes: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    wall_start: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        self.workload = Workload(self.seed, dt.datetime.now(dt.UTC), 1)
        self.rng = random.Random(self.seed)
        self.recent: list[Outgoing] = []

    def valid(self, count: int, partition: int | None = None) -> list[Outgoing]:
        """``count`` new valid events stamped now (a funnel step at a time)."""
        found: list[Outgoing] = []
        while len(found) < count:
            for record in self.workload.live(dt.datetime.now(dt.UTC)):
                found.append(_outgoing(record, "valid", partition))
        found = found[:count]  # the rest of the last funnel step is never sent
        self.recent = (self.recent + found)[-500:]
        return found

    def resends(self, count: int) -> list[Outgoing]:
        """Some recent events again, unchanged: duplicates the ledger must ignore."""
        chosen = self.rng.sample(self.recent, min(count, len(self.recent)))
        return [
            Outgoing(item.value, item.key, _copy(item.sent, "resend"), item.partition)
            for item in chosen
        ]


def _outgoing(record: Record, kind: str, partition: int | None) -> Outgoing:
    event = parse_event_bytes(record.value)
    sent = Sent("valid" if kind == "valid" else "resend", event.type, event.event_id, event)
    return Outgoing(record.value, record.key, sent, partition)


def _copy(sent: Sent, kind: Any) -> Sent:
    return Sent(kind, sent.label, sent.event_id, sent.event)


Check_ = Callable[[Ctx, list[tuple[Samples, int]], Outcome], list[Check]]


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    run: Callable[[Ctx], Awaitable[None]]
    check: Check_ | None = None
    partitions: int = 2


# -- paced traffic with a fault in the middle --------------------------------------------


async def paced(ctx: Ctx, fault: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """``ctx.events`` valid events (and 5% resends) at ``ctx.rate``; the fault starts after a
    third of them. Traffic goes on, slower, until the fault is over."""
    fault_task: asyncio.Task[None] | None = None
    sent, ticks, tick = 0, 0, 0.1
    loop = asyncio.get_running_loop()
    started = loop.time()
    while sent < ctx.events or (fault_task is not None and not fault_task.done()):
        if fault_task is None and sent >= ctx.events / 3:
            fault_task = asyncio.create_task(fault())
        rate = ctx.rate if sent < ctx.events else ctx.rate / 10
        due = max(1, round(rate * tick))
        batch = ctx.valid(due) + ctx.resends(1 if ctx.rng.random() < 0.5 * due / 10 else 0)
        await ctx.sender.kafka(batch)
        sent += due
        ticks += 1
        await asyncio.sleep(max(0.0, started + tick * ticks - loop.time()))
    if fault_task is not None:
        await fault_task  # raises what the fault raised
    ctx.notes.append(f"{loop.time() - started:.0f} s of traffic")


async def worker_kill(ctx: Ctx) -> None:
    async def fault() -> None:
        say(f"{ctx.name}: SIGKILL the worker, start a new one")
        await asyncio.to_thread(ctx.crew.kill, ctx.crew.workers[0])
        await asyncio.to_thread(ctx.crew.add)

    await paced(ctx, fault)


async def rebalance(ctx: Ctx) -> None:
    async def fault() -> None:
        say(f"{ctx.name}: a second worker joins")
        second = await asyncio.to_thread(ctx.crew.add)
        await asyncio.sleep(5)
        say(f"{ctx.name}: the second worker leaves (SIGTERM)")
        await asyncio.to_thread(ctx.crew.leave, second)

    await paced(ctx, fault)


def pause(what: Any, seconds: float) -> Callable[[Ctx], Awaitable[None]]:
    async def run(ctx: Ctx) -> None:
        async def fault() -> None:
            say(f"{ctx.name}: SIGSTOP the {what} for {seconds:g} s")
            ctx.servers.pause(what)
            try:
                await asyncio.sleep(seconds)
            finally:
                ctx.servers.resume(what)
            say(f"{ctx.name}: SIGCONT the {what}")

        await paced(ctx, fault)
        if ctx.sender.retries:
            ctx.notes.append(f"{ctx.sender.retries} sends retried")

    return run


async def redis_restart(ctx: Ctx) -> None:
    async def fault() -> None:
        say(f"{ctx.name}: SIGKILL Redis, start an empty one on the same port")
        # in the main thread: a child dies with the thread that started it (PDEATHSIG)
        ctx.servers.restart_redis()

    await paced(ctx, fault)


# -- hostile input, in order on one partition ---------------------------------------------


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _contract(event_id: str, **data: Any) -> dict[str, Any]:
    values = {
        "contract_id": f"C-{event_id}", "account_id": f"A-{event_id}", "kind": "new",
        "start_date": _now().date().isoformat(), "term_months": 12, "recurring_value": "1200",
    }  # fmt: skip
    values.update(data)
    return {"event_id": event_id, "type": "contract.signed", "occurred_at": _now().isoformat(),
            "data": values}  # fmt: skip


def _lead(event_id: str, occurred_at: str, channel: str = "organic") -> dict[str, Any]:
    data = {"lead_id": f"L-{event_id}", "channel": channel, "origin": "marketing"}
    return {"event_id": event_id, "type": "lead.created", "occurred_at": occurred_at, "data": data}


def poison(tag: str, kafka: bool) -> list[tuple[str, bytes | None, str | None]]:
    """(what, value, event_id) of each hostile record: malformed, out of range, or extreme."""
    found: list[tuple[str, bytes | None, str | None]] = []
    if kafka:
        found.append(("null value", None, None))
    nested = b'{"event_id":"' + tag.encode() + b'-nested","type":"lead.created","data":'
    found.append(("10,000-level nesting", nested + b"[" * 10_000 + b"]" * 10_000 + b"}", None))
    found.append(("not JSON", b"{this is not json", None))
    for what, event in (
        ("start_date 9999-12-31", _contract(f"{tag}-start", start_date="9999-12-31")),
        ("recurring_value 1e22", _contract(f"{tag}-1e22", recurring_value=10**22)),
        ("occurred_at 9999-12-31T23:59:59-01:00",
         _lead(f"{tag}-y9999", "9999-12-31T23:59:59-01:00")),
        ("7 decimals", {"event_id": f"{tag}-decimals", "type": "spend.recorded",
                        "occurred_at": _now().isoformat(),
                        "data": {"channel": "organic", "amount": 12.1234567, "currency": "USD"}}),
    ):  # fmt: skip
        found.append((what, json_bytes(event), str(event["event_id"])))
    return found


def _poison_out(what: str, value: bytes | None, event_id: str | None, partition: int) -> Outgoing:
    return Outgoing(value, b"poison", Sent("poison", what, event_id, None), partition)


async def _interleaved_kafka(ctx: Ctx, bad: list[Outgoing]) -> None:
    """Valid events with one bad record after every POISON_EVERY, in one ordered stream."""
    stream: list[Outgoing] = []
    per_gap = max(POISON_EVERY, ctx.events // (len(bad) + 1))
    for item in bad:
        stream.extend(ctx.valid(per_gap, partition=0))
        stream.append(item)
    stream.extend(ctx.valid(max(0, ctx.events - per_gap * len(bad)), partition=0))
    for start in range(0, len(stream), 200):
        await ctx.sender.kafka(stream[start : start + 200])


async def poison_kafka(ctx: Ctx) -> None:
    tag = ctx.settings.app_id
    await _interleaved_kafka(ctx, [_poison_out(*p, partition=0) for p in poison(tag, kafka=True)])


async def _http_valid(ctx: Ctx, count: int) -> None:
    for item in ctx.valid(count):
        await ctx.sender.http(item.value or b"", item.sent)


async def poison_http(ctx: Ctx) -> None:
    bad = poison(ctx.settings.app_id, kafka=False)
    per_gap = max(POISON_EVERY, ctx.events // (len(bad) + 1))
    for what, value, event_id in bad:
        await _http_valid(ctx, per_gap)
        await ctx.sender.http(value or b"", Sent("poison", what, event_id, None))
    await _http_valid(ctx, max(0, ctx.events - per_gap * len(bad)))


def _odd_times(tag: str, suffix: str) -> list[tuple[str, dict[str, Any]]]:
    ahead = (_now() + dt.timedelta(days=2)).isoformat()
    return [
        ("year 3000", _lead(f"{tag}-y3000-{suffix}", "3000-01-01T00:00:00+00:00")),
        ("year 1800", _lead(f"{tag}-y1800-{suffix}", "1800-01-01T00:00:00+00:00")),
        ("2 days ahead", _lead(f"{tag}-ahead-{suffix}", ahead)),
    ]


async def timestamps(ctx: Ctx) -> None:
    """Far-future and ancient events on both partitions (Kafka) and over HTTP."""
    tag, stream = ctx.settings.app_id, []
    per_gap = max(POISON_EVERY, ctx.events // 12)
    for partition in (0, 1):
        for what, event in _odd_times(tag, f"p{partition}"):
            stream.extend(ctx.valid(per_gap, partition=partition))
            stream.append(_poison_out(what, json_bytes(event), event["event_id"], partition))
    stream.extend(ctx.valid(per_gap, partition=0) + ctx.valid(per_gap, partition=1))
    await ctx.sender.kafka(stream)
    for what, event in _odd_times(tag, "http"):
        await ctx.sender.http(json_bytes(event), Sent("poison", what, event["event_id"], None))
    rest = ctx.events - per_gap * 8
    await ctx.sender.kafka(ctx.valid(max(per_gap, rest)))  # after them, keyed as usual


def clock_checks(ctx: Ctx, scrapes: list[tuple[Samples, int]], _outcome: Outcome) -> list[Check]:
    """The metrics clock never runs ahead of the wall clock (Redis meta and /metrics)."""
    limit = time.time() + 60
    found = [metric_value(s, "revpulse_metrics_clock_timestamp_seconds") for s, _size in scrapes]
    clocks = [value for value in found if value is not None]
    if not clocks:
        return [Check("no metrics clock on /metrics", False)]
    ahead = max(clocks)
    shown = dt.datetime.fromtimestamp(min(ahead, 253402300799), dt.UTC).isoformat()
    return [Check(f"clock on /metrics {shown[:19]}", ahead <= limit)]


async def channel_flood(ctx: Ctx) -> None:
    """Leads on ``flood_channels`` distinct channels, in order on one partition, after some
    normal traffic (whose channels are admitted first under a cap)."""
    stream = ctx.valid(max(20, ctx.events // 4), partition=0)
    at = _now().isoformat()
    for index in range(ctx.flood_channels):
        raw = _lead(f"{ctx.settings.app_id}-flood-{index}", at, channel=f"flood_{index:05d}")
        raw["data"]["estimated_value"] = str(100 + index % 7)
        event = parse_event(raw)
        sent = Sent("valid", "flood lead", event.event_id, event)
        stream.append(Outgoing(json_bytes(raw), partition_key(event).encode(), sent, 0))
        if index % 50 == 0:
            stream.extend(ctx.valid(1, partition=0))
    for start in range(0, len(stream), 500):
        await ctx.sender.kafka(stream[start : start + 500])


def flood_checks(ctx: Ctx, scrapes: list[tuple[Samples, int]], _outcome: Outcome) -> list[Check]:
    if not scrapes:
        return [Check("no /metrics page", False)]
    samples, size = max(scrapes, key=lambda scrape: scrape[1])
    checks = [Check(f"/metrics {size / 1e6:.2f} MB", size < METRICS_PAGE_LIMIT_BYTES)]
    lag = Histogram.from_samples(samples, "revpulse_event_loop_lag_seconds")
    if lag.count > 0:
        p99 = lag.quantile(0.99) or 0.0
        # the histogram keeps no maximum: the bucket it fell in bounds it
        lower, upper = 0.0, 0.0
        for bound, cumulative in lag.buckets:
            upper = bound
            if cumulative >= lag.count:
                break
            lower = bound
        ctx.notes.append(
            f"loop lag p99 {1000 * p99:.0f} ms, max in {1000 * lower:.0f}-{1000 * upper:.0f} ms"
        )
    else:
        ctx.notes.append("no revpulse_event_loop_lag_seconds on /metrics")
    return checks


def _conflicting(event: dict[str, Any]) -> dict[str, Any] | None:
    """The same event_id with different content, or None for a type left alone."""
    data = dict(event["data"])
    for name in ("estimated_value", "recurring_value", "amount"):
        if name in data:
            data[name] = str(Decimal(str(data[name])) + 1)
            return {**event, "data": data}
    return None


def _other_form(event: dict[str, Any]) -> dict[str, Any]:
    """The same content written differently: another UTC offset, money with a trailing 0."""
    at = dt.datetime.fromisoformat(event["occurred_at"]).astimezone(
        dt.timezone(dt.timedelta(hours=2))
    )
    data = dict(event["data"])
    for name in ("estimated_value", "recurring_value", "amount", "one_time_fees"):
        if isinstance(data.get(name), str):
            data[name] += "0" if "." in data[name] else ".00"
    return {**event, "occurred_at": at.isoformat(), "data": data}


async def conflicting_duplicates(ctx: Ctx) -> None:
    """Each 10th event is sent again later with changed content (a conflict, to dead-letter),
    each 7th again in another form of the same content (a plain duplicate)."""
    originals = ctx.valid(ctx.events, partition=0)
    stream, later = [], []
    for index, item in enumerate(originals):
        stream.append(item)
        raw = json.loads(item.value or b"{}")
        if index % 10 == 5 and (changed := _conflicting(raw)) is not None:
            event = parse_event(changed)
            sent = Sent("conflict", event.type, event.event_id, event)
            later.append(Outgoing(json_bytes(changed), item.key, sent, 0))
        elif index % 7 == 3:
            other = _other_form(raw)
            event = parse_event(other)
            sent = Sent("resend", event.type, event.event_id, event)
            later.append(Outgoing(json_bytes(other), item.key, sent, 0))
        if len(later) >= 10:
            stream.extend(later)
            later = []
    await ctx.sender.kafka(stream + later)


def conflict_checks(ctx: Ctx, scrapes: list[tuple[Samples, int]], outcome: Outcome) -> list[Check]:
    conflicts = sum(1 for sent in ctx.sender.log if sent.kind == "conflict")
    counted = sum(metric_value(s, "revpulse_events_conflicting_total") or 0.0 for s, _ in scrapes)
    return [
        Check(
            f"revpulse_events_conflicting_total {counted:g} of {conflicts}", counted == conflicts
        ),
        Check(
            f"{len(outcome.dead)} dead letters for {conflicts} conflicts",
            len(outcome.dead) == conflicts,
        ),
    ]


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("worker-kill", "SIGKILL the worker mid-traffic, start a new one", worker_kill),
    Scenario("rebalance", "a second worker joins, then leaves", rebalance),
    Scenario("redis-stop", "Redis SIGSTOPped for 4 s, then SIGCONT", pause("redis", 4.0)),
    Scenario("redis-restart", "Redis killed and restarted empty on its port", redis_restart),
    Scenario("broker-pause", "the broker SIGSTOPped for 5 s, then SIGCONT", pause("broker", 5.0)),
    Scenario("poison-kafka", "hostile records between valid ones on one partition", poison_kafka),
    Scenario("poison-http", "the same hostile bodies on POST /v1/events", poison_http),
    Scenario(
        "timestamps",
        "years 3000 and 1800 and 2 days ahead, Kafka and HTTP",
        timestamps,
        clock_checks,
    ),
    Scenario(
        "channel-flood", "leads on thousands of distinct channels", channel_flood, flood_checks
    ),
    Scenario(
        "conflicting-duplicates",
        "an event_id again with other content",
        conflicting_duplicates,
        conflict_checks,
    ),
)
