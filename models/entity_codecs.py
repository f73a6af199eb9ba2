"""How hand-offs between entity keys and the changes entity state sends on are written
as message values, and read back exactly (compact JSON; money as the decimal's digits,
days as ordinals, instants in ISO 8601 with their offset)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from models.book import BookedContract
from models.entities import (
    AttachContract,
    BookContract,
    DetachContract,
    Emitted,
    Handoff,
    UnbookContract,
)
from models.keyed import day_from_plain, day_plain, instant_from_plain, instant_plain, money_plain
from models.ledger_codecs import CONTRACT
from models.timeline_sums import MONEY_SUMS

HANDOFF_MARK = b"["  # a hand-off's value starts so; a canonical event's with "{"


def _booked_plain(contract: BookedContract) -> list[Any]:
    c = contract
    return [c.contract_id, c.account_id, c.kind, day_plain(c.start_date), c.term_months,
            money_plain(c.arr)]  # fmt: skip


def _booked_from(plain: list[Any]) -> BookedContract:
    contract_id, account_id, kind, start, term_months, arr = plain
    return BookedContract(
        contract_id, account_id, kind, day_from_plain(start), term_months, Decimal(arr)
    )


def _contract_plain(contract: Any) -> Any:
    return json.loads(CONTRACT.encode(contract))


def _contract_from(plain: Any) -> Any:
    return CONTRACT.decode(json.dumps(plain).encode())


def encode_handoff(handoff: Handoff) -> bytes:
    plain: list[Any]
    match handoff:
        case AttachContract(contract):
            plain = ["attach", _contract_plain(contract)]
        case DetachContract(lead_id, contract_id):
            plain = ["detach", lead_id, contract_id]
        case BookContract(contract, own_churn):
            own = None if own_churn is None else day_plain(own_churn)
            plain = ["book", _booked_plain(contract), own]
        case UnbookContract(account_id, contract_id):
            plain = ["unbook", account_id, contract_id]
    return json.dumps(plain, separators=(",", ":")).encode()


def decode_handoff(value: bytes) -> Handoff:
    kind, *rest = json.loads(value)
    if kind == "attach":
        return AttachContract(_contract_from(rest[0]))
    if kind == "detach":
        return DetachContract(rest[0], rest[1])
    if kind == "book":
        own = None if rest[1] is None else day_from_plain(rest[1])
        return BookContract(_booked_from(rest[0]), own)
    if kind == "unbook":
        return UnbookContract(rest[0], rest[1])
    raise ValueError(f"not a hand-off: {kind!r}")


def encode_changes(changes: Emitted) -> bytes:
    """All but the hand-offs (sent to the keys they are for). No contract or churn: the
    entity partitions write their own parts of the stored copy."""
    plain = {
        "buckets": [[metric, dim, value, day_plain(day), money_plain(amount)]
                    for (metric, (dim, value), day), amount in changes.buckets.items()],
        "sums": [[name, ordinal, str(amount)] for (name, ordinal), amount in changes.sums.items()],
        "channels": changes.channels,
        "accepted": changes.accepted,
        "latest": None if changes.latest is None else instant_plain(changes.latest),
    }  # fmt: skip
    return json.dumps(plain, separators=(",", ":")).encode()


def decode_changes(value: bytes) -> Emitted:
    plain = json.loads(value)
    return Emitted(
        buckets={(metric, (dim, label), day_from_plain(day)): Decimal(amount)
                 for metric, dim, label, day, amount in plain["buckets"]},
        sums={(name, ordinal): Decimal(amount) if name in MONEY_SUMS else int(amount)
              for name, ordinal, amount in plain["sums"]},
        channels=list(plain["channels"]),
        accepted=int(plain["accepted"]),
        latest=None if plain["latest"] is None else instant_from_plain(plain["latest"]),
    )  # fmt: skip
