"""Chaos: faults and hostile input against revpulse on its own embedded stack; one row per
scenario with what was sent, what became of it, and whether Redis equals the oracle.

Run ``python -m bench.chaos --help``. See bench/README.md, "Chaos".
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.chaos_audit import compare, first_versions, metric_value, read_outcome, tally
from bench.chaos_rig import Crew, Sender, Servers, scenario_overrides
from bench.chaos_scenarios import SCENARIOS, Check, Ctx, Scenario, say
from sinks.readback import read_current
from sinks.redis_keys import RedisKeys
from streams.devstack.stack import children_stopped_on_exit
from streams.kafka.topics import ensure_topics
from streams.settings import Settings

DESCRIPTION = """\
Faults and hostile input against revpulse, on the embedded stack (Tansu broker +
redis-server on free ports, started and stopped by this command). Each scenario gets
fresh topics, a Redis prefix and its own `revpulse worker` processes:

{scenarios}

For each one row: sent (records acknowledged by Kafka, or answered by POST
/v1/events: a 4xx counts as sent and rejected), accounted (applied, or a duplicate of
an applied event, or rejected as expected: HTTP 4xx, or on the dead-letter topic),
lost (found nowhere), doubled (accepted by the ledger at two facts offsets),
misrouted (handled, but not as expected: poison applied, a valid event late or
dead-lettered, a conflicting version not dead-lettered), oracle (the current figures
in Redis for the metrics clock's day, and the state read back from Redis, equal
compute_oracle over the valid events acknowledged), and the scenario's own checks.

Exits 1 if any row has lost, doubled or misrouted records, is not equal to the
oracle, or fails a check.
"""
SHORT = {"events": 240, "rate": 120.0, "flood_channels": 1500, "converge": 60.0}
LONG = {"events": 3000, "rate": 200.0, "flood_channels": 10_000, "converge": 240.0}
SETTLE_SECONDS = 10.0


def build_parser() -> argparse.ArgumentParser:
    lines = "\n".join(f"  {s.name:<24}{s.summary}" for s in SCENARIOS)
    parser = argparse.ArgumentParser(
        prog="python -m bench.chaos",
        description=DESCRIPTION.format(scenarios=lines),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    names = ",".join(s.name for s in SCENARIOS)
    parser.add_argument("--scenarios", default=names, help="comma-separated names (all)")
    parser.add_argument(
        "--short",
        action="store_true",
        help=f"the CI form: {SHORT['events']} events per scenario, "
        f"{SHORT['flood_channels']:,} flood channels",
    )
    parser.add_argument(
        "--events", type=int, default=None, metavar="N",
        help=f"valid events per scenario ({LONG['events']}; {SHORT['events']} with --short)",
    )  # fmt: skip
    parser.add_argument(
        "--rate", type=float, default=None, help="events/s of the traffic around faults"
    )
    parser.add_argument(
        "--flood-channels", type=int, default=None, metavar="K",
        help=f"distinct channels in channel-flood ({LONG['flood_channels']:,})",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=7, help="simulator seed (7)")
    parser.add_argument("--json", action="store_true", help="JSON on stdout, table on stderr")
    parser.add_argument("--keep-logs", action="store_true", help="keep the servers' logs")
    return parser


@dataclass
class Row:
    scenario: str
    sent: int = 0
    accounted: int = 0
    lost: int = 0
    doubled: int = 0
    misrouted: int = 0
    oracle_equal: bool = False
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        clean = self.lost == self.doubled == self.misrouted == 0
        return clean and self.oracle_equal and all(check.ok for check in self.checks)


async def wait_ledger(crew: Crew, target: int, timeout_seconds: float) -> tuple[float, float]:
    """Poll until the owner's ledger holds ``target`` events; (held, seconds waited)."""
    started = time.monotonic()
    held = 0.0
    while time.monotonic() - started < timeout_seconds:
        scrapes = await asyncio.to_thread(crew.scrape)
        held = max((metric_value(s, "revpulse_ledger_events") or 0.0 for s, _ in scrapes),
                   default=0.0)  # fmt: skip
        if held >= target:
            break
        await asyncio.sleep(0.5)
    return held, time.monotonic() - started


async def published_after(settings: Settings, moment: float, timeout_seconds: float) -> None:
    """Wait for a publish to Redis after ``moment`` (epoch seconds)."""
    url, keys = settings.redis_url.get_secret_value(), RedisKeys(settings.redis_prefix)
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        try:
            _points, meta = await read_current(url, keys)
            if float(meta.get("published_at") or 0) > moment:
                return
        except Exception:  # Redis still coming back: look again
            pass
        await asyncio.sleep(0.5)


async def run_scenario(scenario: Scenario, servers: Servers, args: argparse.Namespace,
                       log_dir: Path) -> Row:  # fmt: skip
    row = Row(scenario.name)
    started = time.monotonic()
    first_day = dt.datetime.now(dt.UTC).date()
    overrides = scenario_overrides(servers, scenario.name, scenario.partitions)
    crew = Crew(overrides, log_dir / scenario.name)
    try:
        settings = crew.settings
        await ensure_topics(settings)
        say(f"{scenario.name}: starting a worker")
        first = await asyncio.to_thread(crew.add)
        http_url = f"http://127.0.0.1:{first.settings.web_port}/v1/events"
        async with Sender(settings, http_url) as sender:
            ctx = Ctx(scenario.name, servers, crew, settings, sender, args.events, args.rate,
                      args.flood_channels, args.seed)  # fmt: skip
            say(f"{scenario.name}: {scenario.summary}")
            await scenario.run(ctx)
        events = first_versions(sender.log)
        if sender.unacknowledged:
            row.notes.append(f"{sender.unacknowledged} never acknowledged (not counted)")
        say(f"{scenario.name}: {len(sender.log)} sent; waiting for {len(events)} in the ledger")
        held, waited = await wait_ledger(crew, len(events), args.converge)
        if held < len(events):
            row.notes.append(f"ledger held {held:.0f} of {len(events)} after {waited:.0f} s")
        await published_after(settings, time.time(), SETTLE_SECONDS)
        days = (first_day, dt.datetime.now(dt.UTC).date())
        comparison = await compare(settings, events, days, scenario.name == "channel-flood")
        deadline = time.monotonic() + SETTLE_SECONDS
        while not comparison.equal and time.monotonic() < deadline:
            await asyncio.sleep(1.0)  # a publish may still be on its way
            comparison = await compare(settings, events, days, scenario.name == "channel-flood")
        scrapes = await asyncio.to_thread(crew.scrape)
        outcome = await read_outcome(settings)
        counts = tally(sender.log, outcome)
        row.sent, row.accounted, row.lost = counts.sent, counts.accounted, counts.lost
        row.doubled, row.misrouted = counts.doubled, counts.misrouted
        row.oracle_equal = comparison.equal
        if not comparison.equal:
            row.notes.append(comparison.detail)
        row.notes.extend(f"{n} x {what}" for what, n in sorted(counts.problems.items()))
        if scenario.check is not None:
            row.checks.extend(scenario.check(ctx, scrapes, outcome))
        row.notes = ctx.notes + row.notes
    except Exception as error:  # a scenario that cannot finish is a failed row, not a crash
        row.notes.append(f"scenario failed: {type(error).__name__}: {str(error)[:300]}")
        say(f"{scenario.name}: FAILED: {type(error).__name__}: {str(error)[:2000]}")
    finally:
        for name in list(servers.paused):
            servers.resume(name)
        await asyncio.to_thread(crew.stop)
        row.seconds = time.monotonic() - started
    say(f"{scenario.name}: {'ok' if row.ok else 'FAILED'} in {row.seconds:.0f} s")
    return row


def render(rows: list[Row]) -> str:
    header = (f"{'scenario':<23} {'sent':>6} {'accounted':>9} {'lost':>5} {'doubled':>7} "
              f"{'misrouted':>9} {'oracle':>7} {'time':>5}  checks and notes")  # fmt: skip
    lines = ["revpulse chaos", header, "-" * len(header)]
    for row in rows:
        details = [f"{'ok' if c.ok else 'FAIL'}: {c.text}" for c in row.checks] + row.notes
        lines.append(
            f"{row.scenario:<23} {row.sent:>6,} {row.accounted:>9,} {row.lost:>5,} "
            f"{row.doubled:>7,} {row.misrouted:>9,} {'equal' if row.oracle_equal else 'NO':>7} "
            f"{row.seconds:>4.0f}s  {'; '.join(details)}"
        )
    failed = [row.scenario for row in rows if not row.ok]
    lines.append("")
    lines.append(f"FAILED: {', '.join(failed)}" if failed else "every scenario: lost 0, "
                 "doubled 0, misrouted 0, equal to the oracle")  # fmt: skip
    return "\n".join(lines)


def run(args: argparse.Namespace, chosen: list[Scenario]) -> list[Row]:
    log_dir = Path(tempfile.mkdtemp(prefix="revpulse-chaos-"))
    servers = Servers(log_dir)
    rows: list[Row] = []
    try:
        say(f"starting the embedded broker and Redis (logs in {log_dir})")
        servers.start()
        for index, scenario in enumerate(chosen, 1):
            say(f"[{index}/{len(chosen)}] {scenario.name}")
            rows.append(asyncio.run(run_scenario(scenario, servers, args, log_dir)))
        return rows
    finally:
        servers.stop()
        if rows and all(row.ok for row in rows) and not args.keep_logs:
            shutil.rmtree(log_dir, ignore_errors=True)
        else:
            say(f"logs kept in {log_dir}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    sizes = SHORT if args.short else LONG
    for name in ("events", "rate", "flood_channels"):
        if getattr(args, name) is None:
            setattr(args, name, sizes[name])
    args.converge = sizes["converge"]
    by_name = {s.name: s for s in SCENARIOS}
    wanted = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    if unknown := [name for name in wanted if name not in by_name]:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(by_name)}")
    if args.events < 30 or args.rate <= 0 or args.flood_channels < 1:
        parser.error("--events must be at least 30, --rate and --flood-channels positive")
    started = time.monotonic()
    with children_stopped_on_exit(say):  # Ctrl-C and SIGTERM too: no process left behind
        rows = run(args, [by_name[name] for name in wanted])
    table = render(rows)
    report: dict[str, Any] = {
        "command": shlex.join(["python", "-m", "bench.chaos", *(argv or sys.argv[1:])]),
        "seconds": round(time.monotonic() - started, 1),
        "rows": [{**asdict(row), "ok": row.ok} for row in rows],
    }
    if args.json:
        print(table, file=sys.stderr)
        print(json.dumps(report, indent=2))
    else:
        print(table)
        print(f"\n{report['seconds']:.0f} s in all")
    return 0 if all(row.ok for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
