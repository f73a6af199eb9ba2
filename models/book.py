"""The contract book: which contracts are active when, and what that makes ARR."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property

from models.money import add, money_sum
from models.windows import Window, add_months


@dataclass(frozen=True)
class BookedContract:
    """A contract as the book needs it, values already in the reporting currency."""

    contract_id: str
    account_id: str
    kind: str
    start_date: dt.date
    term_months: int
    arr: Decimal

    @cached_property
    def term_end(self) -> dt.date:
        """The first day the contract is no longer active by its term."""
        return add_months(self.start_date, self.term_months)


@dataclass(frozen=True)
class Churn:
    account_id: str
    contract_id: str | None
    effective_date: dt.date


def end_date(contract: BookedContract, churns: Iterable[Churn]) -> dt.date:
    """The first day a contract is not active: its term end, or an earlier churn."""
    end = contract.term_end
    for churn in churns:
        if churn.contract_id is not None:
            applies = churn.contract_id == contract.contract_id
        else:
            applies = churn.account_id == contract.account_id and (
                contract.start_date <= churn.effective_date
            )
        if applies and churn.effective_date < end:
            end = max(contract.start_date, churn.effective_date)
    return end


@dataclass(frozen=True)
class BookEntry:
    contract: BookedContract
    end_date: dt.date
    churned: bool = field(init=False)  # ended before its term by a churn

    def __post_init__(self) -> None:
        object.__setattr__(self, "churned", self.end_date < self.contract.term_end)

    def active_on(self, day: dt.date) -> bool:
        return self.contract.start_date <= day < self.end_date


def build_book(contracts: Iterable[BookedContract], churns: list[Churn]) -> list[BookEntry]:
    by_account: dict[str, list[Churn]] = {}
    by_contract: dict[str, list[Churn]] = {}
    for churn in churns:
        if churn.contract_id is None:
            by_account.setdefault(churn.account_id, []).append(churn)
        else:
            by_contract.setdefault(churn.contract_id, []).append(churn)
    return [
        BookEntry(
            c,
            end_date(c, by_account.get(c.account_id, []) + by_contract.get(c.contract_id, [])),
        )
        for c in contracts
    ]


def arr_on(book: Iterable[BookEntry], day: dt.date) -> tuple[Decimal, int]:
    """ARR and the number of active contracts on ``day``."""
    active = [entry.contract.arr for entry in book if entry.active_on(day)]
    return money_sum(active), len(active)


def active_accounts_on(book: Iterable[BookEntry], day: dt.date) -> set[str]:
    return {entry.contract.account_id for entry in book if entry.active_on(day)}


@dataclass(frozen=True)
class ArrMovements:
    new: Decimal
    expansion: Decimal
    churned: Decimal


def arr_movements(book: Iterable[BookEntry], window: Window) -> ArrMovements:
    """ARR that started (new, expansion) or was lost to churn within the window."""
    new = expansion = churned = Decimal(0)
    for entry in book:
        contract = entry.contract
        if window.contains(contract.start_date):
            if contract.kind == "new":
                new = add(new, contract.arr)
            elif contract.kind == "expansion":
                expansion = add(expansion, contract.arr)
        ended_early = entry.churned and entry.end_date > contract.start_date
        if ended_early and window.contains(entry.end_date):
            churned = add(churned, contract.arr)
    return ArrMovements(new, expansion, churned)


def churned_accounts(book: list[BookEntry], window: Window) -> set[str]:
    """Accounts active on the window's first day and left with none on its last, by churn."""
    day_before = window.first_day
    active_before = active_accounts_on(book, day_before)
    active_after = active_accounts_on(book, window.last_day)
    churned_in_window = {
        entry.contract.account_id
        for entry in book
        if entry.churned and window.contains(entry.end_date)
    }
    return (active_before - active_after) & churned_in_window


@dataclass(frozen=True)
class BookSummary:
    """Everything the published metrics need from the book, for one as-of day."""

    arr: Decimal
    active_contracts: int
    active_accounts: int
    movements: dict[str, ArrMovements]
    churned_accounts: int
    accounts_at_start: int


def summarize(
    book: Iterable[BookEntry], as_of: dt.date, windows: list[Window], churn_window: Window
) -> BookSummary:
    """One pass over the book: ARR on ``as_of``, movements per window, churned accounts.

    Equal to :func:`arr_on`, :func:`arr_movements` and :func:`churned_accounts`, which
    each take a pass of their own; ``churn_window`` must end on ``as_of``. The live
    ledger answers the same from :class:`models.timeline.BookTimeline`, without a pass.
    """
    arr = Decimal(0)
    active_contracts = 0
    accounts: set[str] = set()
    at_start: set[str] = set()
    churned_in_window: set[str] = set()
    moves = {window.name: [Decimal(0), Decimal(0), Decimal(0)] for window in windows}
    for entry in book:
        contract = entry.contract
        if entry.active_on(as_of):
            arr = add(arr, contract.arr)
            active_contracts += 1
            accounts.add(contract.account_id)
        if entry.active_on(churn_window.first_day):
            at_start.add(contract.account_id)
        if entry.churned and churn_window.contains(entry.end_date):
            churned_in_window.add(contract.account_id)
        ended_early = entry.churned and entry.end_date > contract.start_date
        for window in windows:
            totals = moves[window.name]
            if window.contains(contract.start_date):
                if contract.kind == "new":
                    totals[0] = add(totals[0], contract.arr)
                elif contract.kind == "expansion":
                    totals[1] = add(totals[1], contract.arr)
            if ended_early and window.contains(entry.end_date):
                totals[2] = add(totals[2], contract.arr)
    return BookSummary(
        arr=arr,
        active_contracts=active_contracts,
        active_accounts=len(accounts),
        movements={name: ArrMovements(*totals) for name, totals in moves.items()},
        churned_accounts=len((at_start - accounts) & churned_in_window),
        accounts_at_start=len(at_start),
    )
