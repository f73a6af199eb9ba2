"""Every published metric: its name, unit and meaning.

The sinks and the generated catalogue of docs/metrics.md use this list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["count", "money", "ratio", "mean", "months", "multiple"]
QUOTIENT_KINDS: tuple[Kind, ...] = ("ratio", "mean", "months", "multiple")
Scope = Literal["window", "point"]


@dataclass(frozen=True)
class MetricDef:
    name: str
    kind: Kind
    scope: Scope
    segmented: Literal["origin_channel", "channel", "none"]
    help: str


CATALOGUE: tuple[MetricDef, ...] = (
    MetricDef("leads", "count", "window", "origin_channel", "Leads created in the window"),
    MetricDef("conversions", "count", "window", "origin_channel", "Leads converted in the window"),
    MetricDef(
        "lead_value",
        "money",
        "window",
        "origin_channel",
        "Sum of estimated_value of leads created in the window",
    ),
    MetricDef(
        "conversion_rate",
        "ratio",
        "window",
        "origin_channel",
        "Conversions / leads created in the window (0-1)",
    ),
    MetricDef("bookings", "count", "window", "origin_channel", "Contracts signed in the window"),
    MetricDef(
        "bookings_tcv",
        "money",
        "window",
        "origin_channel",
        "TCV (recurring value + one-time fees) of contracts signed in the window",
    ),
    MetricDef(
        "bookings_acv",
        "mean",
        "window",
        "origin_channel",
        "New-bookings ACV: sum of ACV of contracts signed in the window / their number",
    ),
    MetricDef(
        "new_customers",
        "count",
        "window",
        "origin_channel",
        "Contracts of kind new signed in the window",
    ),
    MetricDef(
        "new_acv",
        "mean",
        "window",
        "origin_channel",
        "Mean ACV of kind-new contracts signed in the window",
    ),
    MetricDef(
        "marketing_acv",
        "mean",
        "window",
        "none",
        "ACV from marketing leads: mean ACV of new contracts with origin marketing",
    ),
    MetricDef(
        "marketing_acv_per_lead",
        "mean",
        "window",
        "none",
        "ACV of new marketing contracts / marketing leads created in the window",
    ),
    MetricDef("spend", "money", "window", "channel", "Marketing spend recorded in the window"),
    MetricDef(
        "cac",
        "mean",
        "window",
        "channel",
        "Customer acquisition cost: spend / new customers in the window",
    ),
    MetricDef(
        "roas",
        "multiple",
        "window",
        "channel",
        "Return on ad spend: ACV of new contracts attributed to the channel / its spend",
    ),
    MetricDef(
        "cac_payback_months",
        "months",
        "window",
        "channel",
        "Months of new ACV needed to repay spend: 12 x spend / new ACV",
    ),
    MetricDef(
        "arr_new", "money", "window", "none", "ARR of kind-new contracts that started in the window"
    ),
    MetricDef(
        "arr_expansion",
        "money",
        "window",
        "none",
        "ARR of expansion contracts that started in the window",
    ),
    MetricDef(
        "arr_churned",
        "money",
        "window",
        "none",
        "ARR of contracts ended early by churn in the window",
    ),
    MetricDef(
        "arr",
        "money",
        "point",
        "none",
        "Annual recurring revenue of contracts active on the as-of day",
    ),
    MetricDef("active_contracts", "count", "point", "none", "Contracts active on the as-of day"),
    MetricDef(
        "active_customers",
        "count",
        "point",
        "none",
        "Accounts with at least one active contract on the as-of day",
    ),
    MetricDef(
        "book_acv",
        "mean",
        "point",
        "none",
        "Book ACV: ARR / number of contracts active on the as-of day",
    ),
    MetricDef(
        "customer_churn_rate",
        "ratio",
        "point",
        "none",
        "Accounts lost to churn in the last 365 days / accounts active 365 days ago",
    ),
    MetricDef(
        "ltv",
        "mean",
        "point",
        "none",
        "Lifetime value: mean new ACV over 365 days / annual customer churn rate",
    ),
)

BY_NAME: dict[str, MetricDef] = {metric.name: metric for metric in CATALOGUE}
