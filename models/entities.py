"""Entity state, one key per lead, contract and account: the ledger spread by key.

The ledger (models.ledger) keeps every entity in one place. Here each entity lives
under its own key, so the keys can be spread over partitions and workers, and what
must meet in one place is only what the entities add up to: changes to the daily
buckets and to the book's sums over days (``models.ledger.Ledger.apply_changes`` adds
them up).

Which key an input goes to (:func:`entity_key`):

- ``lead:<lead_id>``: lead creations and conversions (the earliest of each represents
  the lead), and the contracts attributed from the lead;
- ``contract:<contract_id>``: contract signatures (the earliest represents the
  contract, whatever account it names) and the churns of one contract;
- ``account:<account_id>``: the account's churns (no ``contract_id``) and its booked
  contracts, from which its part of the book's sums is counted;
- ``spend:<event_id>``: spend, which no entity keeps.

A contract that takes its origin or channel from its lead cannot be counted where it
is decided: its key hands it to its lead's key (:class:`AttachContract`, a foreign-key
join by repartition, as Kafka Streams does), and hands its book entry to its
account's key (:class:`BookContract`). A hand-off is an input to another key, to be
delivered in the order it was made; hand-offs from one key to another never overtake
each other. Inputs to different keys may arrive in any order, and the sums add up to
the same in the end.

Channels are counted under the sender's own channel here: which channels keep a label
of their own (models.channels) is decided where the changes meet, in the order they
arrive there. Every sender channel seen is listed, in order, for that admission.

The contracts and churns stay here: a partition's part of the stored copy of the state
that ``--as-of`` reads is written from them (:meth:`EntityState.take_delta` gives what
changed since the last call, :meth:`EntityState.contract_page` and
:meth:`EntityState.churn_page` the whole of them, a page at a time), so the place the
changes meet keeps no contract or churn.

Pure: no I/O, no clock. An input is applied in full or raises before changing
anything only for what is checked upstream (models.id_gate admits only holdable
events), so inputs here are admitted events and hand-offs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from models.book import BookedContract, Churn
from models.buckets import ALL
from models.contributions import (
    BucketDay,
    Contribution,
    changes,
    contract_contributions,
    conversion_contributions,
    lead_contributions,
    sender_channel,
    summed,
)
from models.events import (
    UNKNOWN,
    ContractSigned,
    CustomerChurned,
    Event,
    LeadConverted,
    LeadCreated,
    SpendRecorded,
)
from models.facts import ChurnFact, ContractFact, ConversionFact, LeadFact
from models.holdable import contract_values, estimated_value, spend_amount
from models.keyed import TEXTS, MemoryMaps, StateMaps
from models.ledger_codecs import CHURN, CONTRACT, CONVERSION, INSTANT, LEAD
from models.money import MONEY_CONTEXT
from models.policy import MetricPolicy
from models.state import StateDelta
from models.timeline import BookTimeline
from models.timeline_codecs import DAY
from models.timeline_sums import SumChanges, SumDay

WATERMARK = "watermark"  # in entities.marks: the latest occurred_at applied here


@dataclass(frozen=True, slots=True)
class AttachContract:
    """To ``lead:<contract.lead_id>``: count this contract with the lead's attribution
    (in place of an earlier version of it)."""

    contract: ContractFact


@dataclass(frozen=True, slots=True)
class DetachContract:
    """To ``lead:<lead_id>``: the contract is no longer attributed from this lead."""

    lead_id: str
    contract_id: str


@dataclass(frozen=True, slots=True)
class BookContract:
    """To ``account:<contract.account_id>``: book this contract (in place of an earlier
    version of it), with the earliest churn of the contract itself, if any."""

    contract: BookedContract
    own_churn: dt.date | None


@dataclass(frozen=True, slots=True)
class UnbookContract:
    """To ``account:<account_id>``: the contract is no longer booked under this account."""

    account_id: str
    contract_id: str


Handoff = AttachContract | DetachContract | BookContract | UnbookContract
Input = Event | Handoff


def entity_key(item: Input) -> str:
    """The key that keeps what ``item`` changes."""
    match item:
        case LeadCreated() | LeadConverted():
            return f"lead:{item.data.lead_id}"
        case ContractSigned():
            return f"contract:{item.data.contract_id}"
        case CustomerChurned():
            contract_id = item.data.contract_id
            if contract_id is not None:
                return f"contract:{contract_id}"
            return f"account:{item.data.account_id}"
        case SpendRecorded():
            return f"spend:{item.event_id}"
        case AttachContract():
            assert item.contract.lead_id is not None
            return f"lead:{item.contract.lead_id}"
        case DetachContract():
            return f"lead:{item.lead_id}"
        case BookContract():
            return f"account:{item.contract.account_id}"
        case UnbookContract():
            return f"account:{item.account_id}"
    raise TypeError(f"no entity keeps {type(item).__name__}")


@dataclass
class Emitted:
    """What inputs applied since the last :meth:`EntityState.take` send on."""

    buckets: dict[BucketDay, Decimal] = field(default_factory=dict)  # sender channels
    sums: dict[SumDay, Decimal | int] = field(default_factory=dict)
    channels: list[str] = field(default_factory=list)  # sender channels seen, in order
    handoffs: list[Handoff] = field(default_factory=list)
    accepted: int = 0  # events applied
    latest: dt.datetime | None = None  # the latest occurred_at among them

    def changes(self) -> Emitted:
        """All but the hand-offs: what goes on to where the changes meet."""
        return dataclasses.replace(self, handoffs=[])

    def __bool__(self) -> bool:
        return bool(self.buckets or self.sums or self.channels or self.handoffs or self.accepted)


def _via_lead(contract: ContractFact | None) -> str | None:
    """The lead a contract takes part of its attribution from, if it needs one."""
    if contract is None or contract.lead_id is None:
        return None
    if contract.origin is not None and contract.channel is not None:
        return None
    return contract.lead_id


def _own_attribution(contract: ContractFact) -> tuple[str, str]:
    return contract.origin or UNKNOWN, contract.channel or UNKNOWN


class EntityState:
    """The entities of one partition, on ``maps`` (in memory if None): a state made on
    maps that hold one goes on from it."""

    def __init__(self, policy: MetricPolicy, maps: StateMaps | None = None) -> None:
        self.policy = policy
        maps = MemoryMaps() if maps is None else maps
        self._leads = maps.open("entities.leads", LEAD)
        self._conversions = maps.open("entities.conversions", CONVERSION)  # by lead_id
        self._lead_contracts = maps.open("entities.lead_contracts", TEXTS)  # sorted ids
        self._attached = maps.open("entities.attached", CONTRACT)  # "<lead_id>/<contract>"
        self._contracts = maps.open("entities.contracts", CONTRACT)  # the winner
        self._contract_churns = maps.open("entities.contract_churns", DAY)  # the earliest
        self._churns = maps.open("entities.churns", CHURN)  # by event_id
        self._marks = maps.open("entities.marks", INSTANT)  # the watermark
        self._sums = SumChanges()
        self._timeline = BookTimeline(maps=maps, sums=self._sums)  # the accounts' part
        self._out = Emitted()
        self.watermark: dt.datetime | None = self._marks.get(WATERMARK)
        # for the stored copy, since the last take_delta: each contract whose version
        # changed, as booked now, and each churn applied
        self._touched_contracts: dict[str, BookedContract] = {}
        self._new_churns: dict[str, Churn] = {}

    def take(self) -> Emitted:
        """What was applied since the last call, to send on."""
        out, self._out = self._out, Emitted()
        out.sums = self._sums.take()
        return out

    # -- inputs ---------------------------------------------------------------------

    def apply(self, item: Input) -> None:
        """Apply an admitted event (models.id_gate) or a hand-off from another key."""
        match item:
            case AttachContract() | DetachContract() | BookContract() | UnbookContract():
                self._apply_handoff(item)
            case _:
                self._apply_event(item)

    def _apply_event(self, event: Event) -> None:
        out = self._out
        out.accepted += 1
        if out.latest is None or event.occurred_at > out.latest:
            out.latest = event.occurred_at
        if self.watermark is None or event.occurred_at > self.watermark:
            self.watermark = event.occurred_at
            self._marks.put(WATERMARK, event.occurred_at)
        channel = sender_channel(event)
        if channel is not None:
            out.channels.append(channel)
        day = event.occurred_day
        match event:
            case LeadCreated():
                data = event.data
                lead = LeadFact(
                    event.event_id, event.occurred_at, day, data.lead_id, data.origin,
                    data.channel, estimated_value(event),
                )  # fmt: skip
                current = self._leads.get(lead.lead_id)
                if current is None or lead.rank < current.rank:
                    with self._restating(lead.lead_id):
                        self._leads.put(lead.lead_id, lead)
            case LeadConverted():
                lead_id = event.data.lead_id
                conversion = ConversionFact(event.event_id, event.occurred_at, day, lead_id)
                seen = self._conversions.get(lead_id)
                if seen is None or conversion.rank < seen.rank:
                    with self._restating(lead_id):
                        self._conversions.put(lead_id, conversion)
            case ContractSigned():
                self._contract_signed(self._contract_fact(event, day))
            case CustomerChurned():
                self._churned(event, day)
            case SpendRecorded():
                amount = spend_amount(event, self.policy)
                for segment in (ALL, ("channel", event.data.channel)):
                    self._emit(("spend", segment, day), amount)

    def _apply_handoff(self, handoff: Handoff) -> None:
        match handoff:
            case AttachContract(contract):
                lead_id = contract.lead_id
                assert lead_id is not None
                with self._restating(lead_id):
                    ids = self._lead_contracts.get(lead_id) or ()
                    if contract.contract_id not in ids:
                        ids = tuple(sorted((*ids, contract.contract_id)))
                        self._lead_contracts.put(lead_id, ids)
                    self._attached.put(f"{lead_id}/{contract.contract_id}", contract)
            case DetachContract(lead_id, contract_id):
                ids = self._lead_contracts.get(lead_id) or ()
                if contract_id in ids:
                    with self._restating(lead_id):
                        rest = tuple(i for i in ids if i != contract_id)
                        if rest:
                            self._lead_contracts.put(lead_id, rest)
                        else:
                            self._lead_contracts.delete(lead_id)
                        self._attached.delete(f"{lead_id}/{contract_id}")
            case BookContract(contract, own_churn):
                if own_churn is not None:
                    self._timeline.add_churn(
                        Churn(contract.account_id, contract.contract_id, own_churn)
                    )
                self._timeline.put_contract(contract)
            case UnbookContract(account_id, contract_id):
                self._timeline.remove_contract(contract_id, account_id=account_id)

    # -- contracts --------------------------------------------------------------------

    def _contract_fact(self, event: ContractSigned, day: dt.date) -> ContractFact:
        data = event.data
        acv, tcv, arr = contract_values(event, self.policy)
        return ContractFact(
            event.event_id, event.occurred_at, day, data.contract_id, data.account_id,
            data.lead_id, data.origin, data.channel, data.kind, data.start_date,
            data.term_months, acv, tcv, arr,
        )  # fmt: skip

    def _contract_signed(self, fact: ContractFact) -> None:
        """The earliest version represents the contract: its contributions go in place of
        the one before, at its lead's key if it takes its attribution from the lead."""
        contract_id = fact.contract_id
        old = self._contracts.get(contract_id)
        if old is not None and old.rank <= fact.rank:
            return
        self._contracts.put(contract_id, fact)
        self._touched_contracts[contract_id] = fact.booked()
        old_lead, new_lead = _via_lead(old), _via_lead(fact)
        handoffs = self._out.handoffs
        if old is not None:
            if old_lead is None:
                self._emit_all(contract_contributions(old, _own_attribution(old)), -1)
            elif old_lead != new_lead:
                handoffs.append(DetachContract(old_lead, contract_id))
            if old.account_id != fact.account_id:
                handoffs.append(UnbookContract(old.account_id, contract_id))
        if new_lead is None:
            self._emit_all(contract_contributions(fact, _own_attribution(fact)), +1)
        else:
            handoffs.append(AttachContract(fact))
        handoffs.append(BookContract(fact.booked(), self._contract_churns.get(contract_id)))

    def _churned(self, event: CustomerChurned, day: dt.date) -> None:
        data = event.data
        churn = Churn(data.account_id, data.contract_id, event.effective_date)
        fact = ChurnFact(event.event_id, event.occurred_at, day, churn)
        self._churns.put(event.event_id, fact)
        self._new_churns[event.event_id] = churn
        if data.contract_id is None:
            self._timeline.add_churn(churn)  # this is the account's key
            return
        earliest = self._contract_churns.get(data.contract_id)
        if earliest is not None and earliest <= churn.effective_date:
            return
        self._contract_churns.put(data.contract_id, churn.effective_date)
        contract = self._contracts.get(data.contract_id)
        if contract is not None:
            self._out.handoffs.append(BookContract(contract.booked(), churn.effective_date))

    # -- leads ------------------------------------------------------------------------

    def _lead_group(self, lead_id: str) -> Iterator[Contribution]:
        """Everything a lead's key counts: the lead, its conversion, and the contracts
        attributed from it, each with the lead's origin and channel where it has none."""
        lead = self._leads.get(lead_id)
        attribution = (UNKNOWN, UNKNOWN) if lead is None else (lead.origin, lead.channel)
        if lead is not None:
            yield from lead_contributions(lead)
        conversion = self._conversions.get(lead_id)
        if conversion is not None:
            yield from conversion_contributions(conversion, attribution)
        for contract_id in self._lead_contracts.get(lead_id) or ():
            contract = self._attached.get(f"{lead_id}/{contract_id}")
            assert contract is not None  # listed only while attached
            own = (contract.origin or attribution[0], contract.channel or attribution[1])
            yield from contract_contributions(contract, own)

    @contextlib.contextmanager
    def _restating(self, lead_id: str) -> Iterator[None]:
        """A change to a lead's key: what the key counts before and after it, the
        difference emitted."""
        before = summed(self._lead_group(lead_id))
        yield
        after = summed(self._lead_group(lead_id))
        for key, change in changes(before, after):
            self._emit(key, change)

    # -- what is sent on ----------------------------------------------------------------

    def _emit(self, key: BucketDay, amount: Decimal) -> None:
        buckets = self._out.buckets
        total = MONEY_CONTEXT.add(buckets.get(key, Decimal(0)), amount)
        if total:
            buckets[key] = total
        else:
            buckets.pop(key, None)

    def _emit_all(self, contributions: Iterator[Contribution], sign: int) -> None:
        for metric, segment, day, amount in contributions:
            self._emit((metric, segment, day), amount if sign > 0 else amount.copy_negate())

    # -- what a stored copy of the state reads ------------------------------------------

    def contracts(self) -> list[BookedContract]:
        """The contracts whose key is in this partition, as booked, by contract id."""
        return [fact.booked() for _, fact in sorted(self._contracts.items())]

    def churns(self) -> dict[str, Churn]:
        """The churns whose key is in this partition, by event id."""
        return {event_id: fact.churn for event_id, fact in self._churns.items()}

    def take_delta(self, *, full: bool = False) -> StateDelta:
        """The contracts (as booked) and churns changed since the last call, for this
        partition's part of a stored copy; it holds no buckets (the ledger's part has
        them). A ``full`` delta holds nothing yet: the caller reads every contract and
        churn with :meth:`contract_page` and :meth:`churn_page`, and what changes
        meanwhile is in the next delta."""
        if full:
            delta = StateDelta(full=True)
        else:
            delta = StateDelta(contracts=self._touched_contracts, churns=self._new_churns)
        self._touched_contracts, self._new_churns = {}, {}
        return delta

    def contract_page(self, after: str | None, limit: int) -> list[BookedContract]:
        """Up to ``limit`` contracts, as booked, by contract id after ``after`` (from the
        first, if None)."""
        return [fact.booked() for _, fact in self._contracts.items_after(after, limit)]

    def churn_page(self, after: str | None, limit: int) -> list[tuple[str, Churn]]:
        """Up to ``limit`` churns, by event id after ``after`` (from the first, if None)."""
        return [(event_id, fact.churn) for event_id, fact in self._churns.items_after(after, limit)]
