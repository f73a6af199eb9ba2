"""The ledger owner's band changes, without a broker: hysteresis keeps a value sitting on a
threshold from flapping, and only a real crossing makes a band-change event."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from models.events import event_to_json
from models.keyed import MemoryMaps
from models.policy import MetricPolicy
from models.publication import BandChange
from streams.pipeline.owner import LedgerOwner
from tests.unit.builders import contract

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)  # the event clock ignores it


def new_owner() -> LedgerOwner:
    owner = LedgerOwner(MetricPolicy(), "event", "30d")  # 1,000,000 / 500,000, 2 %
    owner.install(owner.load(MemoryMaps()))
    return owner


def sign(owner: LedgerOwner, number: int, acv: int) -> tuple[str | None, BandChange | None]:
    """One new 12-month marketing contract (ACV = its value), then one publication."""
    event = contract(
        f"e{number}", f"C{number}", f"2026-05-{number:02d}", account_id=f"A{number}",
        origin="marketing", channel="paid_search", recurring_value=str(acv),
    )  # fmt: skip
    result = owner.apply_batch([event_to_json(event).encode()])
    assert len(result.accepted) == 1
    publication = owner.publication(NOW)
    assert publication is not None
    owner.published()  # every sink took it, as the publisher reports after a publish
    return publication.band, publication.band_change


def test_a_value_on_a_threshold_does_not_flap() -> None:
    owner = new_owner()
    # (ACV of the next contract, 30-day mean ACV after it, band, change)
    steps = [
        (1_200_000, "strong", None),  # 1,200,000; the first band is no change
        (200_000, "moderate", ("strong", "moderate")),  # 700,000
        (50_000, "under", ("moderate", "under")),  # 483,333.33 < 490,000
        (550_000, "under", None),  # 500,000: on the threshold, plain band moderate
        (495_000, "under", None),  # 499,000
        (505_000, "under", None),  # 500,000
        (525_000, "under", None),  # 503,571.43: within 2 % above
        (499_000, "under", None),  # 503,000
        (600_000, "moderate", ("under", "moderate")),  # 513,777.78 >= 510,000
        (490_000, "moderate", None),  # 511,400: back near the threshold, no flap
        (480_000, "moderate", None),  # 508,545.45
    ]
    changes = []
    for number, (acv, band, change) in enumerate(steps, start=1):
        got_band, got_change = sign(owner, number, acv)
        assert got_band == band, (number, acv)
        if change is None:
            assert got_change is None, (number, acv)
        else:
            assert got_change is not None
            assert (got_change.previous, got_change.current) == change
            assert got_change.window == "30d"
            changes.append(got_change)
    assert [c.value.quantize(Decimal("0.01")) for c in changes] == [
        Decimal("700000.00"),
        Decimal("483333.33"),
        Decimal("513777.78"),
    ]


def test_no_publication_no_change_when_nothing_changed() -> None:
    owner = new_owner()
    sign(owner, 1, 1_200_000)
    assert owner.publication(NOW) is None  # not dirty, same day: nothing to publish


def test_a_restart_starts_without_a_band_and_makes_no_change_event() -> None:
    owner = new_owner()
    sign(owner, 1, 1_200_000)
    sign(owner, 2, 200_000)
    owner.drop()  # the ledger partition moved; a new owner rebuilds
    assert owner.band is None
    owner.install(owner.load(MemoryMaps()))
    band, change = sign(owner, 3, 100_000)
    assert (band, change) == ("under", None)
