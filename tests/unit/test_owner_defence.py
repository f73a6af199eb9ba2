"""The ledger owner's defences: nothing one event does stops the ledger or its clock."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from models.events import event_to_json
from models.keyed import MemoryMaps
from models.policy import MetricPolicy
from streams.pipeline.outcomes import conflict_reason
from streams.pipeline.owner import LedgerOwner
from tests.unit.builders import contract, lead

T0 = dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)


def _line(event: object) -> bytes:
    return event_to_json(event).encode()  # type: ignore[arg-type]


def _owner(clock: str = "wall", policy: MetricPolicy | None = None) -> LedgerOwner:
    built = LedgerOwner(policy or MetricPolicy(), clock, "30d")  # type: ignore[arg-type]
    built.install(built.load(MemoryMaps()))
    return built


def _value(owner: LedgerOwner, metric: str, now: dt.datetime = T0) -> Decimal | None:
    owner.dirty = True
    publication = owner.publication(now)
    assert publication is not None
    for point in publication.points:
        if (point.metric, point.window, point.origin, point.channel) == (
            metric, "30d", "all", "all",
        ):  # fmt: skip
            return point.value
    raise AssertionError(f"no {metric}")


def _poisoned(line: bytes, **data: object) -> bytes:
    """A canonical line with fields the contract no longer admits (logged by an older
    version), bypassing validation as an old changelog record does."""
    raw = json.loads(line)
    raw["data"].update(data)
    return json.dumps(raw, separators=(",", ":")).encode()


def test_wall_clock_never_runs_ahead_of_the_wall_clock() -> None:
    subject = _owner("wall")
    ahead = lead("l1", "L1", "2026-03-10")  # noon, 3 hours after T0
    subject.apply_batch([_line(ahead)])
    assert subject.ledger is not None and subject.ledger.watermark is not None
    assert subject.ledger.watermark > T0
    assert subject.clock(T0) == T0
    publication = subject.publication(T0)
    assert publication is not None and publication.clock == T0


def test_event_clock_is_still_the_watermark() -> None:
    subject = _owner("event")
    subject.apply_batch([_line(lead("l1", "L1", "2026-03-12"))])
    assert subject.clock(T0) == dt.datetime(2026, 3, 12, 12, tzinfo=dt.UTC)


def test_a_conflicting_duplicate_is_reported_and_the_first_version_counts() -> None:
    subject = _owner("event")
    first = contract("c1", "C1", "2026-03-05", recurring_value="12000")
    second = contract("c1", "C1", "2026-03-05", recurring_value="99000")
    result = subject.apply_batch([_line(first), _line(second), _line(first)])
    assert [value for value, _event in result.conflicts] == [_line(second)]
    assert [event.event_id for event in result.duplicates] == ["c1"]
    assert len(result.accepted) == 1
    assert _value(subject, "bookings_acv") == Decimal(12000)
    reason = conflict_reason(result.conflicts[0][1])
    assert reason == (
        "event_id c1 already applied with different content; the first applied version counts"
    )


def test_an_exception_from_the_ledger_is_reported_per_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    subject = _owner("event")
    assert subject.ledger is not None
    real_apply = subject.ledger.apply

    def apply(event: object, source: str = "") -> object:
        if getattr(event, "event_id", None) == "boom":
            raise ArithmeticError("a bug the domain did not foresee")
        return real_apply(event, source)  # type: ignore[arg-type]

    monkeypatch.setattr(subject.ledger, "apply", apply)
    values = [_line(lead("l1", "L1", "2026-03-01")), _line(lead("boom", "L2", "2026-03-02")),
              _line(lead("l3", "L3", "2026-03-03"))]  # fmt: skip
    result = subject.apply_batch(values)
    assert len(result.accepted) == 2
    assert [value for value, _error in result.invalid] == [values[1]]
    assert "ArithmeticError: a bug the domain did not foresee" in str(result.invalid[0][1])


@pytest.mark.parametrize(
    "bad",
    [
        {"start_date": "9999-12-31"},
        {"recurring_value": "10000000000000000000000"},
    ],
)
def test_an_event_the_ledger_cannot_hold_is_invalid_and_changes_nothing(
    bad: dict[str, object],
) -> None:
    subject = _owner("event")
    good = _line(contract("c1", "C1", "2026-03-05"))
    poison = _poisoned(_line(contract("c2", "C2", "2026-03-06", account_id="A2")), **bad)
    result = subject.apply_batch([good, poison])
    assert [value for value, _error in result.invalid] == [poison]
    assert subject.ledger is not None
    assert subject.ledger.accepted_count == 1
    assert subject.ledger.watermark == dt.datetime(2026, 3, 5, 12, tzinfo=dt.UTC)
    assert _value(subject, "bookings_acv") == Decimal(12000)
    # and it is no "duplicate" when sent again
    again = subject.apply_batch([poison])
    assert again.duplicates == [] and len(again.invalid) == 1


def test_restoring_a_log_skips_poisoned_records_and_says_which() -> None:
    good_1 = _line(contract("c1", "C1", "2026-03-05"))
    far_start = _poisoned(_line(contract("c2", "C2", "2026-03-06", account_id="A2")),
                          start_date="9999-12-31")  # fmt: skip
    huge = _poisoned(_line(contract("c3", "C3", "2026-03-07", account_id="A3")),
                     recurring_value="10000000000000000000000")  # fmt: skip
    good_2 = _line(lead("l1", "L1", "2026-03-08"))
    subject = LedgerOwner(MetricPolicy(), "event", "30d")
    ledger = subject.load(MemoryMaps())
    rejects = subject.restore_log(
        ledger, [b"\n".join([good_1, far_start]), b"\n".join([huge, good_2])], first_batch=3
    )
    assert subject.install(ledger) == 2
    assert [(r.batch, r.line) for r in rejects] == [(3, far_start), (4, huge)]
    assert _value(subject, "bookings_acv") == Decimal(12000)
    assert _value(subject, "leads") == Decimal(1)


def test_overflowed_channels_are_reported_once_each() -> None:
    subject = _owner("event", MetricPolicy(max_channels=2))
    first = [_line(lead(f"l{n}", f"L{n}", "2026-03-01", channel=f"ch{n}")) for n in range(4)]
    assert subject.apply_batch(first).accepted
    assert subject.new_overflowed_channels() == ["ch2", "ch3"]
    more = [_line(lead("l9", "L9", "2026-03-02", channel="ch3")),
            _line(lead("l10", "L10", "2026-03-02", channel="ch4"))]  # fmt: skip
    subject.apply_batch(more)
    assert subject.new_overflowed_channels() == ["ch4"]
    # a ledger loaded again maps them again; this process has reported them already
    ledger = subject.load(MemoryMaps())
    subject.restore_log(ledger, [b"\n".join(first + more)])
    subject.install(ledger)
    assert subject.new_overflowed_channels() == []
    assert _value(subject, "leads") == Decimal(6)
