"""The incremental book timeline against the scan: the same answers on every day.

For random sequences of contract changes (added, put again, replaced, moved to another
account, removed) and churns (with and without ``contract_id``, before a start, on it,
after an end), :meth:`BookTimeline.summary` must equal ``summarize(build_book(...))`` on
many as-of days, after every change, with its state in maps of Python objects or of
encoded bytes (which proves the codecs exact); a timeline made again on the maps of
another goes on from its state; and a ``Ledger`` fed contract and churn events in any
order (an earlier-ranked version of a contract arriving last) must publish what the
scan of its book publishes.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.book import BookedContract, Churn, build_book, summarize
from models.events import Event, parse_event
from models.keyed import MemoryMaps
from models.ledger import Ledger
from models.policy import MetricPolicy
from models.timeline import BookTimeline
from models.windows import Window, rolling, windows_ending

EPOCH = dt.date(2023, 1, 1)
CONTRACT_IDS = tuple(f"C{i}" for i in range(6))
ACCOUNT_IDS = tuple(f"A{i}" for i in range(3))
KINDS = ("new", "expansion", "renewal")

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

days = st.integers(-30, 900).map(lambda n: EPOCH + dt.timedelta(days=n))
money = st.integers(0, 10**9).map(lambda units: Decimal(units).scaleb(-6))

contracts = st.builds(
    BookedContract,
    contract_id=st.sampled_from(CONTRACT_IDS),
    account_id=st.sampled_from(ACCOUNT_IDS),
    kind=st.sampled_from(KINDS),
    start_date=days,
    term_months=st.integers(1, 30),
    arr=money,
)
churns = st.builds(
    Churn,
    account_id=st.sampled_from(ACCOUNT_IDS),
    contract_id=st.none() | st.sampled_from(CONTRACT_IDS),
    effective_date=days,
)
Change = tuple[str, Any]
changes = st.one_of(
    st.tuples(st.just("put"), contracts),
    st.tuples(st.just("put"), contracts),
    st.tuples(st.just("again"), st.sampled_from(CONTRACT_IDS)),
    st.tuples(st.just("remove"), st.sampled_from(CONTRACT_IDS)),
    st.tuples(st.just("churn"), churns),
)
Step = tuple[Change, int]  # a change, and an offset that picks days relative to it
ENCODED = pytest.mark.parametrize("encoded", [False, True], ids=["objects", "encoded"])


def _churn_days(contract: BookedContract, offset: int) -> dt.date:
    """A day relative to a contract: before its start, on it, inside, on its end, after."""
    return (
        contract.start_date - dt.timedelta(days=3),
        contract.start_date,
        contract.start_date + dt.timedelta(days=offset % 60),
        contract.term_end,
        contract.term_end + dt.timedelta(days=5),
    )[offset % 5]


def _as_of_days(
    book: dict[str, BookedContract], churn_list: list[Churn], window_days: int = 365
) -> set[dt.date]:
    """Days where the answers change: every start, end and churn, a churn window on, a
    day off."""
    marks = {EPOCH - dt.timedelta(days=40), EPOCH + dt.timedelta(days=2000)}
    for contract in book.values():
        marks |= {contract.start_date, contract.term_end}
    marks |= {churn.effective_date for churn in churn_list}
    found: set[dt.date] = set()
    for day in marks:
        for shift in (-1, 0, 1, window_days - 1, window_days, window_days + 1):
            found.add(day + dt.timedelta(days=shift))
    return found


def _windows(as_of: dt.date) -> list[Window]:
    return [
        *windows_ending(as_of, (7, 30, 90, 365)),
        Window("span", as_of - dt.timedelta(days=700), as_of + dt.timedelta(days=200)),
    ]


def assert_equal_to_scan(
    timeline: BookTimeline,
    book: dict[str, BookedContract],
    churn_list: list[Churn],
    as_of_days: set[dt.date],
) -> None:
    scanned = build_book([book[key] for key in sorted(book)], churn_list)
    assert timeline.entries() == scanned
    for as_of in sorted(as_of_days):
        windows = _windows(as_of)
        year = rolling(as_of, 365)
        got = timeline.summary(as_of, windows, year)
        want = summarize(scanned, as_of, windows, year)
        assert got == want, f"as of {as_of}"


def apply(
    timelines: list[BookTimeline],
    book: dict[str, BookedContract],
    churn_list: list[Churn],
    step: Step,
) -> None:
    """Make one change to each timeline, and to the book and churns they are checked on."""
    (action, value), offset = step
    if action == "again":  # the same contract once more: nothing changes
        value = book.get(value)
        action = "put" if value is not None else "skip"
    if action == "put":
        book[value.contract_id] = value
        for timeline in timelines:
            timeline.put_contract(value)
    elif action == "remove":
        book.pop(value, None)
        for timeline in timelines:
            timeline.remove_contract(value)
    elif action == "churn":
        churn: Churn = value
        target = book.get(churn.contract_id or "") or next(
            (c for c in book.values() if c.account_id == churn.account_id), None
        )
        if target is not None and offset % 2:  # a day that matters to a contract
            churn = Churn(churn.account_id, churn.contract_id, _churn_days(target, offset))
        churn_list.append(churn)
        for timeline in timelines:
            timeline.add_churn(churn)


@ENCODED
@SETTINGS
@given(
    steps=st.lists(st.tuples(changes, st.integers(0, 99)), min_size=1, max_size=30),
    check_every=st.booleans(),
)
def test_timeline_equals_the_scan(encoded: bool, steps: list[Step], check_every: bool) -> None:
    timeline = BookTimeline(maps=MemoryMaps(encoded=encoded))
    book: dict[str, BookedContract] = {}
    churn_list: list[Churn] = []
    for step in steps:
        apply([timeline], book, churn_list, step)
        if check_every:
            day = EPOCH + dt.timedelta(days=step[1] * 10)
            assert_equal_to_scan(timeline, book, churn_list, {day, day + dt.timedelta(days=365)})
    assert_equal_to_scan(timeline, book, churn_list, _as_of_days(book, churn_list))


@ENCODED
@SETTINGS
@given(puts=st.lists(contracts, min_size=1, max_size=20), churn_list=st.lists(churns))
def test_removing_everything_leaves_an_empty_timeline(
    encoded: bool, puts: list[BookedContract], churn_list: list[Churn]
) -> None:
    maps = MemoryMaps(encoded=encoded)
    timeline = BookTimeline(maps=maps)
    for contract in puts:
        timeline.put_contract(contract)
    for churn in churn_list:
        timeline.add_churn(churn)
    for contract_id in CONTRACT_IDS:
        timeline.remove_contract(contract_id)
    assert timeline.size == 0
    assert timeline.entries() == []
    # what is left is the churns, which apply to contracts that come later
    held = {name: len(held) for name, held in maps.maps.items() if len(held)}
    account_churns = {c.account_id for c in churn_list if c.contract_id is None}
    contract_churns = {c.contract_id for c in churn_list if c.contract_id is not None}
    assert held == {
        name: count
        for name, count in [
            ("timeline.account", len(account_churns)),
            ("timeline.contract_churn", len(contract_churns)),
        ]
        if count
    }


@SETTINGS
@given(
    steps=st.lists(st.tuples(changes, st.integers(0, 99)), min_size=1, max_size=30),
    reopen_after=st.sets(st.integers(0, 30), min_size=1, max_size=3),
    churn_window_days=st.sampled_from([365, 365, 30]),
)
def test_a_timeline_made_again_on_its_maps_goes_on_from_them(
    steps: list[Step], reopen_after: set[int], churn_window_days: int
) -> None:
    """A second timeline on the maps of a first, the changes going on there, answers as
    one that was never made again, and as the scan."""
    maps = MemoryMaps(encoded=True)
    reopened = BookTimeline(churn_window_days, maps=maps)
    kept = BookTimeline(churn_window_days)
    book: dict[str, BookedContract] = {}
    churn_list: list[Churn] = []
    for index, step in enumerate(steps):
        if index in reopen_after:
            reopened = BookTimeline(churn_window_days, maps=maps)
        apply([reopened, kept], book, churn_list, step)
    if len(steps) in reopen_after:
        reopened = BookTimeline(churn_window_days, maps=maps)
    scanned = build_book([book[key] for key in sorted(book)], churn_list)
    assert reopened.entries() == kept.entries() == scanned
    assert reopened.size == kept.size
    for as_of in sorted(_as_of_days(book, churn_list, churn_window_days)):
        windows = _windows(as_of)
        churn_window = rolling(as_of, churn_window_days)
        got = reopened.summary(as_of, windows, churn_window)
        assert got == kept.summary(as_of, windows, churn_window), f"as of {as_of}"
        assert got == summarize(scanned, as_of, windows, churn_window), f"as of {as_of}"


# -- through the ledger -------------------------------------------------------------

_TIMES = st.integers(0, 400 * 24).map(
    lambda hours: dt.datetime(2023, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=hours)
)
_contract_data = st.fixed_dictionaries(
    {
        "contract_id": st.sampled_from(CONTRACT_IDS),
        "account_id": st.sampled_from(ACCOUNT_IDS),
        "kind": st.sampled_from(KINDS),
        "start_date": days.map(dt.date.isoformat),
        "term_months": st.integers(1, 30),
        "recurring_value": st.integers(0, 10**8).map(lambda c: str(Decimal(c).scaleb(-2))),
    }
)
_churn_data = st.fixed_dictionaries(
    {"account_id": st.sampled_from(ACCOUNT_IDS)},
    optional={
        "contract_id": st.sampled_from(CONTRACT_IDS),
        "effective_date": days.map(dt.date.isoformat),
    },
)
_typed = st.one_of(
    st.tuples(st.just("contract.signed"), _contract_data),
    st.tuples(st.just("customer.churned"), _churn_data),
)


def _events(drawn: list[tuple[tuple[str, dict[str, Any]], dt.datetime]]) -> list[Event]:
    return [
        parse_event(
            {
                "event_id": f"ev-{index:03d}",
                "type": type_,
                "occurred_at": when.isoformat(),
                "data": data,
            }
        )
        for index, ((type_, data), when) in enumerate(drawn)
    ]


@SETTINGS
@given(drawn=st.lists(st.tuples(_typed, _TIMES), min_size=1, max_size=30), data=st.data())
def test_ledger_book_summary_equals_the_scan(
    drawn: list[tuple[tuple[str, dict[str, Any]], dt.datetime]], data: st.DataObject
) -> None:
    """Applied in any order (restore: no lateness), so an earlier-ranked version of a
    contract often arrives after the one it replaces, and churns before contracts."""
    events = data.draw(st.permutations(_events(drawn)))
    ledger = Ledger(MetricPolicy())
    for event in events:
        ledger.restore(event)
    book = {c.contract_id: c for c in ledger.booked_contracts()}
    scanned = ledger.book_entries()
    assert [e.contract for e in scanned] == [book[key] for key in sorted(book)]
    for as_of in sorted(_as_of_days(book, ledger.churns())):
        windows = windows_ending(as_of, MetricPolicy().window_days)
        year = rolling(as_of, 365)
        assert ledger.book_summary(as_of, windows, year) == summarize(
            scanned, as_of, windows, year
        ), f"as of {as_of}"
