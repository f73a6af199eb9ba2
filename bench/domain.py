"""The pure domain in this process: decoding, Ledger.apply and compute_points, no I/O."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

from tqdm import tqdm

from models.events import Event, parse_event_bytes
from models.ledger import Ledger
from models.policy import MetricPolicy
from models.series import compute_points

# ledger sizes (fractions of N) at which compute_points is timed, to show how it grows
GROWTH_FRACTIONS = (0.25, 0.5, 1.0)


@dataclass(frozen=True)
class DomainFigures:
    parse_seconds: float
    apply_seconds: float
    compute_points_seconds: float
    points: int
    contracts: int
    # (events in the ledger, seconds of one compute_points) at each growth fraction
    growth: tuple[tuple[int, float], ...]


def _time_compute(ledger: Ledger, event: Event, repeat: int) -> tuple[float, int]:
    timings = []
    points = 0
    for _ in range(repeat):
        started = time.perf_counter()
        points = len(compute_points(ledger, event.occurred_day))
        timings.append(time.perf_counter() - started)
    return statistics.median(timings), points


def measure_domain(values: Sequence[bytes], policy: MetricPolicy, repeat: int) -> DomainFigures:
    """Medians over ``repeat`` runs of: parse all, apply all to a fresh ledger, compute points."""
    parse_runs, apply_runs = [], []
    events: list[Event] = []
    ledger = Ledger(policy)
    for run in tqdm(range(repeat), desc="domain: parse + Ledger.apply", unit="run", disable=None):
        started = time.perf_counter()
        events = [parse_event_bytes(value) for value in values]
        parse_runs.append(time.perf_counter() - started)
        ledger = Ledger(policy)
        started = time.perf_counter()
        for event in events:
            ledger.apply(event)
        apply_runs.append(time.perf_counter() - started)
        if run == 0 and ledger.accepted_count != len(values):
            raise RuntimeError(f"the ledger accepted {ledger.accepted_count} of {len(values)}")
    compute_seconds, points = _time_compute(ledger, events[-1], repeat)
    growth = []
    for fraction in GROWTH_FRACTIONS:
        size = max(1, round(len(events) * fraction))
        if size == len(events):
            growth.append((size, compute_seconds))
            continue
        partial = Ledger(policy)
        for event in events[:size]:
            partial.apply(event)
        growth.append((size, _time_compute(partial, events[size - 1], repeat)[0]))
    return DomainFigures(
        parse_seconds=statistics.median(parse_runs),
        apply_seconds=statistics.median(apply_runs),
        compute_points_seconds=compute_seconds,
        points=points,
        contracts=len(ledger.booked_contracts()),
        growth=tuple(growth),
    )
