"""The JSON form of a metric point, shared by the Redis sink and the CLI."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from models.book import BookedContract, Churn
from models.buckets import BucketKey
from models.reach import CopyReach
from models.series import MetricPoint


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def point_to_dict(point: MetricPoint) -> dict[str, Any]:
    """``metric, window, origin, channel, value, as_of`` and, for a quotient, its parts."""
    found: dict[str, Any] = {
        "metric": point.metric,
        "window": point.window,
        "origin": point.origin,
        "channel": point.channel,
        "value": _text(point.value),
        "as_of": point.as_of.isoformat(),
    }
    if point.denominator is not None:
        found["numerator"] = _text(point.numerator)
        found["denominator"] = _text(point.denominator)
    return found


def point_to_json(point: MetricPoint) -> str:
    return json.dumps(point_to_dict(point), sort_keys=True, separators=(",", ":"))


def point_from_json(text: str | bytes) -> MetricPoint:
    raw = json.loads(text)

    def number(key: str) -> Decimal | None:
        value = raw.get(key)
        return None if value is None else Decimal(value)

    return MetricPoint(
        metric=raw["metric"],
        window=raw["window"],
        origin=raw["origin"],
        channel=raw["channel"],
        value=number("value"),
        as_of=dt.date.fromisoformat(raw["as_of"]),
        numerator=number("numerator"),
        denominator=number("denominator"),
    )


def bucket_field(key: BucketKey, day: dt.date) -> str:
    return "|".join((*key, day.isoformat()))


def bucket_from_field(text: str) -> tuple[BucketKey, dt.date]:
    metric, dimension, value, day = text.rsplit("|", 3)
    return (metric, dimension, value), dt.date.fromisoformat(day)


def contract_to_json(contract: BookedContract) -> str:
    return json.dumps(
        {
            "account_id": contract.account_id,
            "kind": contract.kind,
            "start_date": contract.start_date.isoformat(),
            "term_months": contract.term_months,
            "arr": format(contract.arr, "f"),
        },
        sort_keys=True,
    )


def contract_from_json(contract_id: str, text: str | bytes) -> BookedContract:
    raw = json.loads(text)
    return BookedContract(
        contract_id,
        raw["account_id"],
        raw["kind"],
        dt.date.fromisoformat(raw["start_date"]),
        int(raw["term_months"]),
        Decimal(raw["arr"]),
    )


def churn_to_json(churn: Churn) -> str:
    return json.dumps(
        {
            "account_id": churn.account_id,
            "contract_id": churn.contract_id,
            "effective_date": churn.effective_date.isoformat(),
        },
        sort_keys=True,
    )


def churn_from_json(text: str | bytes) -> Churn:
    raw = json.loads(text)
    return Churn(
        raw["account_id"], raw["contract_id"], dt.date.fromisoformat(raw["effective_date"])
    )


def reach_to_fields(reach: CopyReach) -> dict[str, str]:
    """A copy's reach as the fields of its part's ``reach`` hash."""
    return {
        "first_as_of": reach.first_as_of.isoformat(),
        "widest_window_days": str(reach.widest_window_days),
        "clock_day": reach.clock_day.isoformat(),
        "retention_days": str(reach.retention_days),
    }


def reach_from_fields(fields: dict[Any, Any]) -> CopyReach | None:
    """The reach a part's hash records, or None for a copy that records none (written
    by an earlier release, or unbounded)."""
    if not fields:
        return None
    raw = {_decoded(key): _decoded(value) for key, value in fields.items()}
    return CopyReach(
        dt.date.fromisoformat(raw["first_as_of"]),
        int(raw["widest_window_days"]),
        dt.date.fromisoformat(raw["clock_day"]),
        int(raw["retention_days"]),
    )


def _decoded(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
