"""Table recovery with Tansu's partition end: an offset inside the changelog's last batch
is set back to the reported end - 1; one past the batch's true end is left for Faust's
consistency check (the broker lost records)."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from streams.pipeline import transport

TOPIC = "rp-id-gate-changelog"


class Consumer:
    """What recovery asks the consumer: the earliest offsets and the reported ends."""

    def __init__(self, reported_ends: dict[TP, int]) -> None:
        self.reported_ends = reported_ends

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        return dict.fromkeys(tps, 0)

    async def highwaters(self, *tps: TP) -> dict[TP, int]:
        return {tp: self.reported_ends[tp] for tp in tps}


@pytest.fixture
def recovery(monkeypatch: pytest.MonkeyPatch) -> Any:
    # the last batch of each partition: offsets 2069..2087 (one batch of 19 records)
    async def read_last_batch(_bootstrap: str, _topic: str, _partition: int) -> list[Any]:
        return [SimpleNamespace(offset=offset) for offset in range(2069, 2088)]

    monkeypatch.setattr(transport, "read_last_batch", read_last_batch)
    found = transport.Recovery.__new__(transport.Recovery)
    broker = SimpleNamespace(host="127.0.0.1", port=9092)
    found.__dict__["app"] = SimpleNamespace(conf=SimpleNamespace(broker=[broker]))
    monkeypatch.setattr(transport.Recovery, "_start_offsets_logtable", lambda *a, **k: "")
    monkeypatch.setattr(
        transport.Recovery, "log", SimpleNamespace(info=lambda *a, **k: None), raising=False
    )
    return found


async def test_an_offset_inside_the_last_batch_is_set_back_to_the_reported_end(
    recovery: Any,
) -> None:
    inside, at_end, before, lost = (TP(TOPIC, p) for p in range(4))
    offsets: Counter[TP] = Counter({inside: 2087, at_end: 2069, before: 100, lost: 5000})
    consumer = Consumer({inside: 2070, at_end: 2070, before: 2070, lost: 2070})
    await recovery._build_offsets(consumer, {inside, at_end, before, lost}, offsets, "active")
    assert offsets[inside] == 2069  # read the last batch's base again: what Faust accepts
    assert offsets[at_end] == 2069
    assert offsets[before] == 100  # nothing to do
    assert offsets[lost] == 5000  # past what the broker holds: Faust's check fails it
