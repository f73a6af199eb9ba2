"""Entity state by key (models.entities), and the ledger adding up its changes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from models.entities import (
    AttachContract,
    BookContract,
    DetachContract,
    Emitted,
    EntityState,
    UnbookContract,
    entity_key,
)
from models.entity_codecs import (
    HANDOFF_MARK,
    decode_changes,
    decode_handoff,
    encode_changes,
    encode_handoff,
)
from models.events import OVERFLOW_CHANNEL, Event, parse_event
from models.ledger import Ledger
from models.policy import MetricPolicy

DAY = dt.date(2024, 3, 1)


def _event(event_id: str, type_: str, when: str, **data: Any) -> Event:
    return parse_event({"event_id": event_id, "type": type_, "occurred_at": when, "data": data})


def _contract(event_id: str, when: str, **data: Any) -> Event:
    fields = {"contract_id": "C1", "account_id": "A1", "start_date": "2024-03-01",
              "term_months": 12, "recurring_value": "1200.00", **data}  # fmt: skip
    return _event(event_id, "contract.signed", when, **fields)


def test_each_input_goes_to_the_key_that_keeps_what_it_changes() -> None:
    lead = _event("e1", "lead.created", "2024-03-01T10:00:00+00:00", lead_id="L1",
                  channel="organic", origin="marketing")  # fmt: skip
    churn_of_account = _event("e2", "customer.churned", "2024-03-01T10:00:00+00:00",
                              account_id="A1", effective_date="2024-04-01")  # fmt: skip
    churn_of_contract = _event("e3", "customer.churned", "2024-03-01T10:00:00+00:00",
                               account_id="A1", contract_id="C7",
                               effective_date="2024-04-01")  # fmt: skip
    assert entity_key(lead) == "lead:L1"
    assert entity_key(_contract("e4", "2024-03-01T10:00:00+00:00")) == "contract:C1"
    assert entity_key(churn_of_account) == "account:A1"
    assert entity_key(churn_of_contract) == "contract:C7"
    assert entity_key(DetachContract("L2", "C1")) == "lead:L2"
    assert entity_key(UnbookContract("A9", "C1")) == "account:A9"


def test_a_contract_attributed_from_its_lead_is_handed_to_the_lead_and_booked() -> None:
    state = EntityState(MetricPolicy())
    state.apply(_contract("e1", "2024-03-01T10:00:00+00:00", lead_id="L1"))
    out = state.take()
    assert out.buckets == {}  # counted where the lead is known, not here
    assert [type(h) for h in out.handoffs] == [AttachContract, BookContract]
    attach, book = out.handoffs
    assert isinstance(attach, AttachContract) and attach.contract.lead_id == "L1"
    assert entity_key(attach) == "lead:L1"
    assert isinstance(book, BookContract) and book.own_churn is None
    assert entity_key(book) == "account:A1"
    assert out.accepted == 1


def test_a_contract_with_its_own_attribution_is_counted_where_it_is_decided() -> None:
    state = EntityState(MetricPolicy())
    state.apply(_contract("e1", "2024-03-01T10:00:00+00:00", lead_id="L1",
                          origin="sales", channel="events"))  # fmt: skip
    out = state.take()
    assert out.buckets[("bookings", ("channel", "events"), DAY)] == 1
    assert out.buckets[("bookings", ("origin", "sales"), DAY)] == 1
    assert [type(h) for h in out.handoffs] == [BookContract]
    assert out.channels == ["events"]


def test_an_earlier_version_under_another_account_and_lead_moves_the_contract() -> None:
    state = EntityState(MetricPolicy())
    state.apply(_contract("e2", "2024-03-02T10:00:00+00:00", lead_id="L1"))
    state.take()
    state.apply(_contract("e1", "2024-03-01T10:00:00+00:00", lead_id="L2", account_id="A2"))
    handoffs = state.take().handoffs
    assert handoffs[:2] == [DetachContract("L1", "C1"), UnbookContract("A1", "C1")]
    assert [entity_key(h) for h in handoffs[2:]] == ["lead:L2", "account:A2"]
    state.apply(_contract("e3", "2024-03-03T10:00:00+00:00", lead_id="L3"))  # later: loses
    assert not state.take().handoffs


def test_a_contract_churn_before_its_contract_is_booked_with_it() -> None:
    state = EntityState(MetricPolicy())
    state.apply(_event("e1", "customer.churned", "2024-03-05T10:00:00+00:00",
                       account_id="A1", contract_id="C1", effective_date="2024-06-01"))  # fmt: skip
    assert not state.take().handoffs  # no contract yet
    state.apply(_contract("e2", "2024-03-01T10:00:00+00:00"))
    books = [h for h in state.take().handoffs if isinstance(h, BookContract)]
    assert [b.own_churn for b in books] == [dt.date(2024, 6, 1)]


def test_the_lead_restates_what_is_attributed_from_it_when_it_arrives() -> None:
    state = EntityState(MetricPolicy())
    state.apply(_contract("e1", "2024-03-01T10:00:00+00:00", lead_id="L1"))
    (attach,) = [h for h in state.take().handoffs if isinstance(h, AttachContract)]
    state.apply(attach)
    unknown = state.take().buckets
    assert unknown[("bookings", ("channel", "unknown"), DAY)] == 1
    state.apply(_event("e2", "lead.created", "2024-02-01T10:00:00+00:00", lead_id="L1",
                       channel="organic", origin="marketing"))  # fmt: skip
    moved = state.take().buckets
    assert moved[("bookings", ("channel", "unknown"), DAY)] == -1
    assert moved[("bookings", ("channel", "organic"), DAY)] == 1
    assert ("bookings", ("all", "all"), DAY) not in moved  # the total did not change


def test_the_ledger_labels_changed_channels_past_the_cap_as_overflow() -> None:
    aggregate = Ledger(MetricPolicy(max_channels=1))
    first, second = ("leads", ("channel", "organic"), DAY), ("leads", ("channel", "events"), DAY)
    aggregate.apply_changes(Emitted(buckets={first: Decimal(1)}, channels=["organic"], accepted=1))
    aggregate.apply_changes(Emitted(buckets={second: Decimal(2)}, channels=["events"], accepted=1))
    days = aggregate.buckets.as_dict()
    assert days[("leads", "channel", "organic")] == {DAY: 1}
    assert days[("leads", "channel", OVERFLOW_CHANNEL)] == {DAY: 2}
    assert aggregate.admitted_channels == ("organic",)
    assert aggregate.accepted_count == 2


def test_hand_offs_and_changes_read_back_as_written() -> None:
    state = EntityState(MetricPolicy())
    state.apply(_event("e0", "customer.churned", "2024-03-05T10:00:00+00:00",
                       account_id="A1", contract_id="C1", effective_date="2024-06-01"))  # fmt: skip
    state.apply(_contract("e2", "2024-03-02T10:00:00+00:00", lead_id="L1", channel="events"))
    state.apply(_contract("e1", "2024-03-01T10:00:00+00:00", lead_id="L2", account_id="A2"))
    out = state.take()
    for handoff in out.handoffs:
        state.apply(handoff)
    more = state.take()
    assert len(out.handoffs) == 6 and more.sums and more.buckets
    for handoff in out.handoffs:
        assert encode_handoff(handoff).startswith(HANDOFF_MARK)
        assert decode_handoff(encode_handoff(handoff)) == handoff
    for changes in (out.changes(), more.changes()):
        assert decode_changes(encode_changes(changes)) == changes
