"""What an ``--as-of`` day within the retention can reach, so a stored copy can drop the rest.

The figures of an as-of day ``D`` read the book through windows ending on ``D``: the
reported windows (rolling ``window_days``, month and quarter to date), the churn window
(:data:`models.series.CHURN_WINDOW_DAYS`), and ARR on ``D`` itself. The CLI answers only
``D >= F``, the first kept day (the clock's day minus ``retention_days``). So no figure
looks at a day before ``E = F - (widest window - 1)``: :func:`StateReach.first_day`.

A book entry contributes to a figure only through its start in a window, its end in a
window, or being active on a day at or after ``E`` (``start <= day < end``). An entry
whose end is before ``E`` does none of these (its start is not after its end), nor does
one ended on ``E`` by its term (only an end by churn counts in a window). Its end is at
most its term's end, whatever the churns, so:

* a contract whose term ends on or before ``E`` can be dropped
  (:meth:`StateReach.keeps`); it changes no other entry's end.

A churn cannot simply be dropped once its date is before ``E``: a contract arriving later
with an earlier start date is ended by it, and without it would count. But of the churns
dated before ``E`` that apply to the same contracts, one is enough (:func:`fold_churns`):

* an account-wide churn dated ``e < E`` applies to the account's contracts starting on
  or before ``e``; with it their end is at most ``e``, before ``E``. The latest such churn
  of the account applies to all of them and ends them before ``E`` too: the others change
  no figure.
* a churn of one contract dated ``e < E`` ends that contract on ``max(start, e)``: on
  its start day if it starts at or after ``E`` (whatever ``e`` below ``E``), else before
  ``E``. Any one of them gives the same figures: the latest is kept.

The copy then holds the contracts whose term ends after ``E``, the churns dated at or after
``E``, and at most one earlier churn per account and per contract id.

That holds for the worker's ``F`` and widest window, not a reader's: the copy records them
(:class:`CopyReach`), and a reader refuses a day before ``F`` or a window wider than the
widest (:meth:`CopyReach.refusal`), whatever its own settings say.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from models.book import BookedContract, Churn
from models.errors import OutOfReachError
from models.policy import MetricPolicy
from models.series import CHURN_WINDOW_DAYS

# the longest calendar quarter to date: 1 October to 31 December
QUARTER_MAX_DAYS = 92

# an earlier churn kept for its scope: (effective date, event id), the greatest wins
ChurnMark = tuple[dt.date, str]


def widest_window_days(window_days: Iterable[int]) -> int:
    """The widest window any figure of an as-of day reads the book through."""
    return max(CHURN_WINDOW_DAYS, QUARTER_MAX_DAYS, *window_days)


@dataclass(frozen=True)
class CopyReach:
    """What a bounded copy answers exactly: as-of days from ``first_as_of`` (``F``), over
    windows of at most ``widest_window_days``. ``clock_day`` and ``retention_days`` are
    what ``F`` was computed from, for the reader's message."""

    first_as_of: dt.date
    widest_window_days: int
    clock_day: dt.date
    retention_days: int

    @staticmethod
    def merged(reaches: Iterable[CopyReach]) -> CopyReach | None:
        """What every one of several parts answers: the latest ``F``, the narrowest
        widest window. None when there is none."""
        found = list(reaches)
        if not found:
            return None
        latest = max(found, key=lambda r: (r.first_as_of, r.clock_day))
        narrowest = min(r.widest_window_days for r in found)
        return dataclasses.replace(latest, widest_window_days=narrowest)

    def refusal(self, day: dt.date, window_days: Iterable[int]) -> str | None:
        """Why figures of ``day`` over ``window_days`` would be short, or None."""
        if day < self.first_as_of:
            return (
                f"the state copy in Redis answers days from {self.first_as_of}: the worker "
                f"keeps {self.retention_days} days before its clock {self.clock_day} and "
                f"drops contracts and churns no later day can reach, so figures for {day} "
                "would be short"
            )
        needed = widest_window_days(window_days)
        if needed > self.widest_window_days:
            return (
                f"the state copy in Redis answers windows of up to {self.widest_window_days} "
                f"days, the worker's widest; these windows reach {needed} days back, before "
                "contracts it dropped, so their figures would be short"
            )
        return None

    def check(self, day: dt.date, window_days: Iterable[int]) -> None:
        """Raise :class:`OutOfReachError` when :meth:`refusal` gives a reason."""
        reason = self.refusal(day, window_days)
        if reason is not None:
            raise OutOfReachError(day, self.first_as_of, reason)


@dataclass(frozen=True)
class StateReach:
    """The days a stored copy must answer for, from the publishing worker's policy."""

    retention_days: int
    window_days: tuple[int, ...]

    @classmethod
    def for_policy(cls, policy: MetricPolicy) -> StateReach:
        return cls(policy.retention_days, policy.window_days)

    def first_as_of(self, clock_day: dt.date) -> dt.date:
        """The first as-of day answered: the first day whose buckets are kept."""
        return clock_day - dt.timedelta(days=self.retention_days)

    def first_day(self, clock_day: dt.date) -> dt.date:
        """``E``: the first day any figure of an answered as-of day looks at."""
        widest = widest_window_days(self.window_days)
        return self.first_as_of(clock_day) - dt.timedelta(days=widest - 1)

    def copy_reach(self, clock_day: dt.date) -> CopyReach:
        """What a copy bounded on ``clock_day`` answers."""
        return CopyReach(
            self.first_as_of(clock_day),
            widest_window_days(self.window_days),
            clock_day,
            self.retention_days,
        )

    @staticmethod
    def keeps(contract: BookedContract, first_day: dt.date) -> bool:
        """Whether a contract can change a figure of a day at or after ``first_day``: a
        term ending on ``first_day`` itself is over before it, and ended by its term, not
        by a churn (a churned end counts in windows, a term end does not)."""
        return contract.term_end > first_day


def churn_scope(churn: Churn) -> str:
    """The contracts a churn applies to: one contract, or an account's."""
    if churn.contract_id is not None:
        return f"contract:{churn.contract_id}"
    return f"account:{churn.account_id}"


def fold_churns(
    kept: Mapping[str, ChurnMark], earlier: Mapping[str, Churn]
) -> tuple[dict[str, ChurnMark], set[str]]:
    """Churns dated before ``E`` (by event id) folded into the one kept per scope.

    ``kept``: the churn kept so far per scope. Returns the scopes whose kept churn changed
    and the event ids to drop (earlier churns, or ones kept before that lost their place).
    """
    changed: dict[str, ChurnMark] = {}
    dropped: set[str] = set()
    for event_id, churn in sorted(earlier.items()):
        scope = churn_scope(churn)
        mark = (churn.effective_date, event_id)
        held = changed.get(scope, kept.get(scope))
        if held is None or mark > held:
            if held is not None and held[1] != event_id:
                dropped.add(held[1])
            changed[scope] = mark
        elif held[1] != event_id:
            dropped.add(event_id)
    return changed, dropped


def reachable(
    contracts: Iterable[BookedContract], churns: Mapping[str, Churn], first_day: dt.date
) -> tuple[list[BookedContract], dict[str, Churn]]:
    """The part of a book that days at or after ``first_day`` can reach: equal figures."""
    earlier = {eid: churn for eid, churn in churns.items() if churn.effective_date < first_day}
    _kept, dropped = fold_churns({}, earlier)
    return (
        [c for c in contracts if StateReach.keeps(c, first_day)],
        {eid: churn for eid, churn in churns.items() if eid not in dropped},
    )
