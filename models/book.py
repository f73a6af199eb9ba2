"""The contract book: which contracts are active when, and what that makes ARR."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

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

    @property
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

    def active_on(self, day: dt.date) -> bool:
        return self.contract.start_date <= day < self.end_date

    @property
    def churned(self) -> bool:
        return self.end_date < self.contract.term_end


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
    return sum(active, Decimal(0)), len(active)


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
                new += contract.arr
            elif contract.kind == "expansion":
                expansion += contract.arr
        ended_early = entry.churned and entry.end_date > contract.start_date
        if ended_early and window.contains(entry.end_date):
            churned += contract.arr
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
