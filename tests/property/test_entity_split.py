"""The ledger spread by key: id gates by event id, entity state by lead, contract and
account key over several partitions, hand-offs between keys delivered in any
interleaving that keeps each (sender, receiver) pair in order, and one ledger adding
up what every partition sends on in any such interleaving: the figures are the oracle's.

Without a cap on channels (or with an allowlist) the order things arrive in never
matters. With a cap, which channels keep a label depends on the order the aggregate
sees them; the totals over all channels do not.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import zlib
from collections import defaultdict, deque

from hypothesis import given
from hypothesis import strategies as st

from bench.oracle import compute_oracle
from models.book import BookedContract, Churn
from models.entities import Emitted, EntityState, Input, entity_key
from models.events import Event
from models.id_gate import IdGate
from models.ledger import Ledger, Outcome
from models.policy import MetricPolicy
from models.series import compute_points
from models.state import StateDelta
from tests.property.test_oracle import (
    SETTINGS,
    _by_time,
    as_of_days,
    assert_same_points,
    capped_policies,
    event_logs,
    extra_days,
    feed,
    policies,
    with_duplicates,
)
from tests.property.test_split_ledger import NEVER_LATE, with_conflicts

GATES = 3
PARTS = 3

allowlisted_policies = capped_policies.filter(lambda policy: bool(policy.channel_allowlist))


def partition_of(key: str, partitions: int) -> int:
    return zlib.crc32(key.encode()) % partitions


@dataclasses.dataclass
class PartCopy:
    """A partition's part of the stored copy, as the deltas it wrote leave it."""

    contracts: dict[str, BookedContract] = dataclasses.field(default_factory=dict)
    churns: dict[str, Churn] = dataclasses.field(default_factory=dict)

    def write(self, delta: StateDelta) -> None:
        assert not delta.buckets  # the ledger's part has them
        self.contracts.update(delta.contracts)
        self.churns.update(delta.churns)


def spread_feed(
    policy: MetricPolicy,
    stream: list[Event],
    shuffle: random.Random,
    copies: list[PartCopy] | None = None,
) -> tuple[Ledger, list[EntityState]]:
    """Gates by event id; each admitted event to the entity partition of its key; every
    hand-off and every partition's changes delivered in a random interleaving that
    keeps each sender's messages to one receiver in order. Into ``copies``, if given,
    each partition writes its deltas at random times, and once at the end."""
    gates = [IdGate(policy) for _ in range(GATES)]
    parts = [EntityState(policy) for _ in range(PARTS)]
    aggregate = Ledger(policy)  # where the changes meet
    # per (sender, receiving partition), the inputs in flight; per partition, its changes
    inputs: dict[tuple[str, int], deque[Input]] = defaultdict(deque)
    changes: dict[int, deque[Emitted]] = defaultdict(deque)
    for event in stream:
        gate = partition_of(event.event_id, GATES)
        if gates[gate].admit(event) is Outcome.APPLIED:
            inputs[(f"gate{gate}", partition_of(entity_key(event), PARTS))].append(event)
    while True:
        ready = [("in", key) for key, queue in sorted(inputs.items()) if queue]
        ready += [("out", part) for part, queue in sorted(changes.items()) if queue]
        if not ready:
            break
        kind, which = shuffle.choice(ready)
        if kind == "out":
            assert isinstance(which, int)
            aggregate.apply_changes(changes[which].popleft())
            continue
        assert isinstance(which, tuple)
        part = which[1]
        parts[part].apply(inputs[which].popleft())
        emitted = parts[part].take()
        for handoff in emitted.handoffs:
            inputs[(f"part{part}", partition_of(entity_key(handoff), PARTS))].append(handoff)
        changes[part].append(emitted.changes())
        if copies is not None and shuffle.random() < 0.3:
            copies[part].write(parts[part].take_delta())
    for part, copy in enumerate(copies or []):
        copy.write(parts[part].take_delta())
    return aggregate, parts


@SETTINGS
@given(
    data=st.data(),
    events=event_logs(),
    policy=st.one_of(policies, allowlisted_policies),
    extra=extra_days,
    shuffle=st.randoms(use_true_random=False),
)
def test_entities_spread_by_key_add_up_to_the_oracle(
    data: st.DataObject,
    events: list[Event],
    policy: MetricPolicy,
    extra: dt.date,
    shuffle: random.Random,
) -> None:
    policy = dataclasses.replace(policy, lateness=NEVER_LATE)
    repeated, _ = with_duplicates(data, _by_time(events))
    produced, _ = with_conflicts(data, repeated)
    stream = data.draw(st.permutations(produced))

    copies = [PartCopy() for _ in range(PARTS)]
    aggregate, parts = spread_feed(policy, stream, shuffle, copies)
    whole = Ledger(policy)
    feed(whole, stream)

    assert aggregate.accepted_count == whole.accepted_count == len(events)
    assert aggregate.watermark == whole.watermark
    assert set(aggregate.admitted_channels) == set(whole.admitted_channels)
    assert aggregate.buckets.as_dict() == whole.buckets.as_dict()
    spread_contracts = sorted(
        (c for part in parts for c in part.contracts()), key=lambda c: c.contract_id
    )
    assert spread_contracts == whole.booked_contracts()
    spread_churns = {k: v for part in parts for k, v in part.churns().items()}
    assert spread_churns == whole.take_delta(full=True).churns
    # the parts' copies, written a delta at a time, hold what the whole ledger's does
    copied = {cid: c for copy in copies for cid, c in copy.contracts.items()}
    assert sorted(copied.values(), key=lambda c: c.contract_id) == whole.booked_contracts()
    assert {eid: c for copy in copies for eid, c in copy.churns.items()} == spread_churns
    # and the ledger where the changes meet keeps no contract and no churn
    assert aggregate.booked_contracts() == []
    assert aggregate.take_delta(full=True).churns == {}
    for as_of in as_of_days(stream, extra):
        # the oracle gets the whole stream, repeats included: the first copy counts
        assert_same_points(compute_points(aggregate, as_of), compute_oracle(stream, as_of, policy))


@SETTINGS
@given(
    data=st.data(),
    events=event_logs(),
    policy=capped_policies.filter(lambda policy: not policy.channel_allowlist),
    extra=extra_days,
    shuffle=st.randoms(use_true_random=False),
)
def test_past_the_cap_only_which_channel_labels_counts_depends_on_order(
    data: st.DataObject,
    events: list[Event],
    policy: MetricPolicy,
    extra: dt.date,
    shuffle: random.Random,
) -> None:
    policy = dataclasses.replace(policy, lateness=NEVER_LATE)
    stream = data.draw(st.permutations(events))
    aggregate, _ = spread_feed(policy, stream, shuffle)
    whole = Ledger(policy)
    feed(whole, stream)

    assert len(aggregate.admitted_channels) <= policy.max_channels
    spread, kept = aggregate.buckets.as_dict(), whole.buckets.as_dict()
    assert {k: v for k, v in spread.items() if k[1] != "channel"} == {
        k: v for k, v in kept.items() if k[1] != "channel"
    }
    for as_of in as_of_days(stream, extra):
        points = [p for p in compute_points(aggregate, as_of) if p.channel in ("all", "unknown")]
        expected = [p for p in compute_points(whole, as_of) if p.channel in ("all", "unknown")]
        assert_same_points(points, expected)
