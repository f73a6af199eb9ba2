"""How the ledger's kept facts are written in a map on disk, and read back exactly.

Compact JSON lists: money as the decimal's own digits, days as ordinals, instants in
ISO 8601 with their offset.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from models.book import Churn
from models.buckets import DayAmounts
from models.facts import ChurnFact, ContractFact, ConversionFact, LeadFact
from models.keyed import (
    Codec,
    day_from_plain,
    day_plain,
    instant_from_plain,
    instant_plain,
    json_codec,
    money_plain,
)


def _head(fact: LeadFact | ConversionFact | ContractFact | ChurnFact) -> list[Any]:
    return [fact.event_id, instant_plain(fact.occurred_at), day_plain(fact.day)]


def _head_from(plain: list[Any]) -> tuple[str, dt.datetime, dt.date]:
    return plain[0], instant_from_plain(plain[1]), day_from_plain(plain[2])


def _optional_money(amount: Decimal | None) -> str | None:
    return None if amount is None else money_plain(amount)


def _lead_plain(fact: LeadFact) -> list[Any]:
    return [*_head(fact), fact.lead_id, fact.origin, fact.channel,
            _optional_money(fact.estimated_value)]  # fmt: skip


def _lead_from(plain: list[Any]) -> LeadFact:
    value = plain[6]
    return LeadFact(*_head_from(plain), plain[3], plain[4], plain[5],
                    None if value is None else Decimal(value))  # fmt: skip


def _conversion_plain(fact: ConversionFact) -> list[Any]:
    return [*_head(fact), fact.lead_id]


def _conversion_from(plain: list[Any]) -> ConversionFact:
    return ConversionFact(*_head_from(plain), plain[3])


def _contract_plain(fact: ContractFact) -> list[Any]:
    return [
        *_head(fact), fact.contract_id, fact.account_id, fact.lead_id, fact.origin,
        fact.channel, fact.kind, day_plain(fact.start_date), fact.term_months,
        money_plain(fact.acv), money_plain(fact.tcv), money_plain(fact.arr),
    ]  # fmt: skip


def _contract_from(plain: list[Any]) -> ContractFact:
    return ContractFact(
        *_head_from(plain), plain[3], plain[4], plain[5], plain[6], plain[7], plain[8],
        day_from_plain(plain[9]), plain[10], Decimal(plain[11]), Decimal(plain[12]),
        Decimal(plain[13]),
    )  # fmt: skip


def _churn_plain(fact: ChurnFact) -> list[Any]:
    churn = fact.churn
    return [*_head(fact), churn.account_id, churn.contract_id, day_plain(churn.effective_date)]


def _churn_from(plain: list[Any]) -> ChurnFact:
    return ChurnFact(*_head_from(plain), Churn(plain[3], plain[4], day_from_plain(plain[5])))


LEAD: Codec[LeadFact] = json_codec(_lead_plain, _lead_from)
CONVERSION: Codec[ConversionFact] = json_codec(_conversion_plain, _conversion_from)
CONTRACT: Codec[ContractFact] = json_codec(_contract_plain, _contract_from)
CHURN: Codec[ChurnFact] = json_codec(_churn_plain, _churn_from)
INSTANT: Codec[dt.datetime] = json_codec(instant_plain, instant_from_plain)


def _day_amounts_plain(amounts: DayAmounts) -> list[Any]:
    return [[*key, money_plain(amount)] for key, amount in amounts]


def _day_amounts_from(plain: list[Any]) -> DayAmounts:
    return tuple(((metric, dimension, value), Decimal(amount))
                 for metric, dimension, value, amount in plain)  # fmt: skip


DAY_AMOUNTS: Codec[DayAmounts] = json_codec(_day_amounts_plain, _day_amounts_from)
