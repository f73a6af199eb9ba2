"""models.reach: a book cut down to what answered ``--as-of`` days reach gives equal figures."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.book import BookedContract, BookSummary, Churn, build_book, summarize
from models.errors import OutOfReachError
from models.policy import MetricPolicy
from models.reach import CopyReach, StateReach, churn_scope, fold_churns, reachable
from models.windows import rolling, windows_ending
from sinks.codec import reach_from_fields, reach_to_fields

CLOCK_DAY = dt.date(2030, 1, 1)
REACH = StateReach(retention_days=30, window_days=(7, 30))
FIRST_AS_OF = REACH.first_as_of(CLOCK_DAY)
FIRST_DAY = REACH.first_day(CLOCK_DAY)
AS_OF_DAYS = [FIRST_AS_OF + dt.timedelta(days=n) for n in (0, 1, 2, 29, 30, 31, 45, 200, 400)]
DAYS = st.dates(FIRST_DAY - dt.timedelta(days=500), FIRST_AS_OF + dt.timedelta(days=60))
ACCOUNTS = st.sampled_from(["A", "B", "C"])


@st.composite
def contracts(draw: st.DrawFn, prefix: str) -> list[BookedContract]:
    found = []
    for n in range(draw(st.integers(0, 8))):
        found.append(
            BookedContract(
                contract_id=f"{prefix}{n}",
                account_id=draw(ACCOUNTS),
                kind=draw(st.sampled_from(["new", "renewal", "expansion"])),
                start_date=draw(DAYS),
                term_months=draw(st.integers(1, 30)),
                arr=Decimal(draw(st.integers(1, 9))) * 1000,
            )
        )
    return found


@st.composite
def churns(draw: st.DrawFn, prefix: str, contract_ids: list[str]) -> dict[str, Churn]:
    found = {}
    for n in range(draw(st.integers(0, 8))):
        target = draw(st.sampled_from([None, *contract_ids, "unknown"]))
        found[f"{prefix}{n}"] = Churn(draw(ACCOUNTS), target, draw(DAYS))
    return found


def figures(contracts: list[BookedContract], churns: dict[str, Churn]) -> list[BookSummary]:
    book = build_book(contracts, [churns[eid] for eid in sorted(churns)])
    return [
        summarize(book, day, windows_ending(day, REACH.window_days), rolling(day, 365))
        for day in AS_OF_DAYS
    ]


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_a_book_cut_to_its_reach_gives_every_answered_day_the_same_figures(
    data: st.DataObject,
) -> None:
    ids = [f"c{n}" for n in range(8)]
    booked = data.draw(contracts("c"))
    churned = data.draw(churns("e", ids))
    kept_contracts, kept_churns = reachable(booked, churned, FIRST_DAY)
    # what arrives after the cut: contracts with any start date (a churn before the first
    # reached day still ends them), and churns of any date
    later = data.draw(contracts("late"))
    later += data.draw(contracts("c"))  # a contract id seen before, booked anew
    later_churns = data.draw(churns("f", ids + [c.contract_id for c in later]))
    assert figures(kept_contracts + later, {**kept_churns, **later_churns}) == figures(
        booked + later, {**churned, **later_churns}
    )


def test_the_cut_drops_ended_terms_and_folds_earlier_churns() -> None:
    old = FIRST_DAY - dt.timedelta(days=400)
    ended = BookedContract("old", "A", "new", old, 12, Decimal(1000))  # term ends before E
    live = BookedContract("live", "A", "new", FIRST_AS_OF, 12, Decimal(2000))
    churned = {
        "e1": Churn("A", None, old),
        "e2": Churn("A", None, old + dt.timedelta(days=30)),  # the latest of account A
        "e3": Churn("B", "x", old),
        "e4": Churn("B", "x", old + dt.timedelta(days=1)),  # the latest of contract x
        "e5": Churn("A", None, FIRST_DAY),  # reached: kept as it is
    }
    kept_contracts, kept_churns = reachable([ended, live], churned, FIRST_DAY)
    assert kept_contracts == [live]
    assert sorted(kept_churns) == ["e2", "e4", "e5"]


def test_a_term_ending_the_day_after_the_first_reached_day_is_kept() -> None:
    """On ``E`` it is still active: the first day of the first answered day's churn window."""
    start = FIRST_DAY - dt.timedelta(days=365)
    day_after = BookedContract("c", "A", "new", start, 12, Decimal(1000))
    assert day_after.term_end == FIRST_DAY + dt.timedelta(days=1)
    assert reachable([day_after], {}, FIRST_DAY)[0] == [day_after]
    assert figures([day_after], {}) != figures([], {})
    on_the_day = BookedContract("c", "A", "new", start - dt.timedelta(days=1), 12, Decimal(1))
    assert on_the_day.term_end == FIRST_DAY
    assert reachable([on_the_day], {}, FIRST_DAY)[0] == []
    assert figures([on_the_day], {}) == figures([], {})


def test_the_one_earlier_churn_kept_still_ends_a_contract_booked_later() -> None:
    """Why a churn before E is folded, not dropped: without it, this contract would count."""
    churned = {"e1": Churn("A", None, FIRST_DAY - dt.timedelta(days=10))}
    late = BookedContract(
        "late", "A", "new", FIRST_DAY - dt.timedelta(days=100), 120, Decimal(5000)
    )
    _contracts, kept = reachable([], churned, FIRST_DAY)
    assert figures([late], kept) == figures([late], churned)
    assert figures([late], kept) != figures([late], {})


def test_folding_in_steps_keeps_what_folding_at_once_keeps() -> None:
    day = FIRST_DAY - dt.timedelta(days=50)
    first = {"e1": Churn("A", None, day), "e2": Churn("A", "x", day)}
    second = {"e3": Churn("A", None, day + dt.timedelta(days=1)), "e4": Churn("A", "x", day)}
    kept, dropped = fold_churns({}, first)
    assert dropped == set()
    more, dropped_later = fold_churns(kept, second)
    assert more == {"account:A": (day + dt.timedelta(days=1), "e3"), "contract:x": (day, "e4")}
    assert dropped_later == {"e1", "e2"}
    at_once, dropped_at_once = fold_churns({}, {**first, **second})
    assert {**kept, **more} == at_once and dropped_at_once == dropped_later
    assert churn_scope(second["e4"]) == "contract:x"


def test_the_first_reached_day_covers_the_widest_window_of_the_first_answered_day() -> None:
    clock_day = dt.date(2026, 3, 10)
    policy = MetricPolicy(retention_days=800, window_days=(7, 30, 90, 365))
    reach = StateReach.for_policy(policy)
    assert reach.first_as_of(clock_day) == clock_day - dt.timedelta(days=800)
    assert reach.first_day(clock_day) == clock_day - dt.timedelta(days=800 + 364)
    wide = StateReach(retention_days=10, window_days=(7, 730))
    assert wide.first_day(clock_day) == clock_day - dt.timedelta(days=10 + 729)
    narrow = StateReach(retention_days=10, window_days=(7,))  # the churn window still counts
    assert narrow.first_day(clock_day) == clock_day - dt.timedelta(days=10 + 364)


def test_a_copy_answers_from_its_first_as_of_day_over_its_widest_window() -> None:
    answer = REACH.copy_reach(CLOCK_DAY)
    assert answer.first_as_of == FIRST_AS_OF == dt.date(2029, 12, 2)
    assert answer.widest_window_days == 365  # the churn window: wider than 7, 30, a quarter
    assert answer.refusal(FIRST_AS_OF, REACH.window_days) is None
    assert answer.refusal(FIRST_AS_OF + dt.timedelta(days=400), (7, 30, 365)) is None
    early = answer.refusal(FIRST_AS_OF - dt.timedelta(days=1), REACH.window_days)
    assert early is not None and "answers days from 2029-12-02" in early
    assert "keeps 30 days before its clock 2030-01-01" in early
    wide = answer.refusal(FIRST_AS_OF, (7, 30, 400))
    assert wide is not None and "windows of up to 365 days" in wide and "400" in wide


def test_a_refused_day_raises_naming_the_first_day_answered() -> None:
    answer = REACH.copy_reach(CLOCK_DAY)
    day = FIRST_AS_OF - dt.timedelta(days=10)
    with pytest.raises(OutOfReachError) as refused:
        answer.check(day, REACH.window_days)
    assert refused.value.first_day == FIRST_AS_OF
    assert str(refused.value).startswith(f"no data for {day}: ")
    answer.check(FIRST_AS_OF, REACH.window_days)  # answered: no error


def test_parts_together_answer_what_each_of_them_answers() -> None:
    """The latest first day and the narrowest widest window over the parts."""
    behind = StateReach(retention_days=800, window_days=(7, 30, 400)).copy_reach(CLOCK_DAY)
    ahead = REACH.copy_reach(CLOCK_DAY)
    merged = CopyReach.merged([behind, ahead])
    assert merged is not None
    assert merged.first_as_of == ahead.first_as_of and merged.retention_days == 30
    assert merged.widest_window_days == 365 < behind.widest_window_days
    assert CopyReach.merged([behind]) == behind
    assert CopyReach.merged([]) is None


def test_a_reach_is_stored_as_text_and_read_back_equal() -> None:
    answer = REACH.copy_reach(CLOCK_DAY)
    fields = reach_to_fields(answer)
    assert fields["first_as_of"] == "2029-12-02" and fields["widest_window_days"] == "365"
    as_bytes = {key.encode(): value.encode() for key, value in fields.items()}
    assert reach_from_fields(as_bytes) == answer
    assert reach_from_fields({}) is None  # a copy that records none
