"""The ledger: accepted facts, deduplicated, and the daily buckets they add up to.

What grows with the number of entities (event ids, leads, contracts, churns, and the
book timeline's contracts and accounts) lives in keyed maps (models.keyed), so it can be
kept on disk; per entity only the fact that represents it is kept. A ledger made on
maps that hold a ledger's state goes on from that state.

Order does not matter: an entity (a lead, its conversion, a contract) is represented
by the earliest of its events (by ``occurred_at``, then ``event_id``), and a fact
that depends on a lead is restated when the lead arrives or changes. The same set
of accepted events gives the same state whatever order they came in, with one
exception: past the cap on distinct channels (``MetricPolicy.max_channels``, no
allowlist), which channels keep their own label depends on the order events are
applied in (models.channels). Replaying them in that order gives the same state.

An event is checked and computed in full before anything is stored, so one that
cannot be held raises InvalidEventError and leaves the ledger as it was.

Which events count (repeats of an id, late events) is judged by an id gate
(models.id_gate): :meth:`Ledger.apply` judges with a gate of its own, on the ledger's
maps, and :meth:`Ledger.apply_admitted` applies an event a gate upstream admitted.
Accepted event ids are remembered for the dedup horizon (models.dedup), not for ever:
:meth:`Ledger.forget_ids` forgets, a bounded slice per call, the ids whose events lie
a horizon or more behind the slowest source's mark, and every event older than the
ids forgotten is judged late, so none of them counts twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal

from models.book import BookedContract, BookEntry, BookSummary, Churn, build_book
from models.buckets import ALL, DailyBuckets
from models.channels import ChannelAdmission
from models.contributions import Contribution
from models.contributions import changes as _changes
from models.contributions import contract_contributions as _contract_contributions
from models.contributions import conversion_contributions as _conversion_contributions
from models.contributions import lead_contributions as _lead_contributions
from models.contributions import sender_channel as _sender_channel
from models.contributions import summed as _summed
from models.entities import Emitted
from models.events import (
    UNKNOWN,
    ContractSigned,
    CustomerChurned,
    Event,
    LeadConverted,
    LeadCreated,
    SpendRecorded,
)
from models.facts import ChurnFact, ContractFact, ConversionFact, LeadFact, Rank
from models.holdable import (
    COMPUTE_ERRORS,
    cannot_hold,
    check_values,
    contract_values,
    digest_of,
    estimated_value,
    spend_amount,
)
from models.holdable import check_currency as check_currency
from models.id_gate import FORGOTTEN as FORGOTTEN
from models.id_gate import FORGOTTEN_BEFORE as FORGOTTEN_BEFORE
from models.id_gate import PASS_CURSOR as PASS_CURSOR
from models.id_gate import WATERMARK, IdGate
from models.id_gate import Outcome as Outcome
from models.keyed import COUNT, MONEY, TEXTS, KeyedMap, MemoryMaps, StateMaps
from models.ledger_codecs import CHURN, CONTRACT, CONVERSION, DAY_AMOUNTS, INSTANT, LEAD
from models.policy import MetricPolicy
from models.state import StateDelta
from models.timeline import BookTimeline
from models.windows import Window


def _rank(fact: LeadFact | ConversionFact | ContractFact | ChurnFact) -> Rank:
    return fact.rank


class Ledger:
    """Accepted facts and their daily buckets. Pure: time is passed in."""

    def __init__(
        self,
        policy: MetricPolicy,
        sources: tuple[str, ...] = ("",),
        maps: StateMaps | None = None,
    ) -> None:
        """``sources``: the independent inputs events arrive from, each in its own order.
        Each keeps its own watermark, and an event is late only when it is older than the
        allowed lateness behind the slowest of them, so a backfill read from several
        inputs at different speeds loses nothing.

        ``maps``: where the state is kept (in memory if None); if they hold a ledger's
        state, this ledger starts from it."""
        self.policy = policy
        self.sources = sources
        maps = MemoryMaps() if maps is None else maps
        # the ids and the sources' marks: ledger.ids, ledger.id_days, ledger.forgetting, and
        # its own keys in ledger.marks and ledger.counts (the same maps as this ledger's below)
        self._gate = IdGate(policy, sources, maps, prefix="ledger")
        # per entity, the fact that represents it (the earliest, by rank)
        self._leads = maps.open("ledger.leads", LEAD)
        self._conversions = maps.open("ledger.conversions", CONVERSION)  # by lead_id
        self._contracts = maps.open("ledger.contracts", CONTRACT)
        self._contracts_by_lead = maps.open("ledger.lead_contracts", TEXTS)  # sorted ids
        self._churns = maps.open("ledger.churns", CHURN)  # by event_id
        self._marks = maps.open("ledger.marks", INSTANT)  # watermark (and the gate's marks)
        self._counts = maps.open("ledger.counts", COUNT)  # accepted (and the gate's count)
        self._admitted = maps.open("ledger.channels", TEXTS)
        # per day, every bucket's amount on it (one entry per bucket day before)
        self.buckets = DailyBuckets(
            maps.open("ledger.bucket_days", DAY_AMOUNTS), legacy=maps.open("ledger.buckets", MONEY)
        )
        self._timeline = BookTimeline(maps=maps)  # what publishing reads: no scan of the book
        self._channels = ChannelAdmission.for_policy(policy, self._admitted.get("admitted") or ())
        self.watermark: dt.datetime | None = self._marks.get(WATERMARK)  # the clock
        self._accepted_count = self._counts.get("accepted") or 0
        # each contract changed since the last delta, as booked now: a delta reads no map
        self._touched_contracts: dict[str, BookedContract] = {}
        self._new_churns: list[ChurnFact] = []

    # -- intake -----------------------------------------------------------------

    def lateness_mark(self) -> dt.datetime | None:
        """The slowest source's watermark; None until every source has been seen."""
        return self._gate.lateness_mark()

    def is_late(self, event: Event) -> bool:
        """Older than the allowed lateness behind the slowest source, or older than the
        ids already forgotten (which, with the sources fixed, is never later)."""
        return self._gate.is_late(event)

    def apply(self, event: Event, source: str = "") -> Outcome:
        """Apply one validated event, unless it is a repeat (duplicate or conflict) or late.

        Raises InvalidEventError, leaving the ledger exactly as it was, if the event
        cannot be held (for example, a value no contract rule let through)."""
        outcome = self._gate.judge(event)
        if outcome is not None:
            return outcome
        commit = self._prepare(event)
        self._gate.remember(event, digest_of(event), source)
        commit()
        return Outcome.APPLIED

    def restore(self, event: Event) -> Outcome:
        """Apply an event accepted before (recovery): no lateness check, but an event
        older than the ids forgotten is late, as it may have counted already. As
        :meth:`apply`, an event that cannot be held raises InvalidEventError and
        changes nothing."""
        outcome = self._gate.judge(event, restoring=True)
        if outcome is not None:
            return outcome
        commit = self._prepare(event)
        self._gate.remember(event, digest_of(event), None)
        commit()
        return Outcome.APPLIED

    def apply_admitted(self, event: Event) -> Outcome:
        """Apply an event an id gate upstream admitted (models.id_gate.IdGate.admit): no
        id is checked or remembered and no lateness judged here; a re-delivery of the
        same event is the caller's to skip. Counts it accepted, moves the watermark,
        admits its channel and restates what it changes; returns APPLIED.

        Raises InvalidEventError, leaving the ledger exactly as it was, if the event
        cannot be held.

        One exception: an event whose id this ledger accepted itself (before an id gate
        ran upstream of it: the gate of an upgraded worker starts without those ids)
        is the repeat it is, DUPLICATE or CONFLICT, and changes nothing."""
        repeat = self._gate.repeat(event)
        if repeat is not None:
            return repeat
        self._prepare(event)()
        return Outcome.APPLIED

    def apply_changes(self, changes: Emitted) -> None:
        """Add what entity state kept elsewhere (models.entities) applied: this ledger is
        then where the changes meet, and keeps no entity of its own, no contract and no
        churn (the entity partitions write those parts of the stored copy themselves).
        Channels are admitted first, in the order listed, so each change counts under
        the label its channel has once admitted."""
        channels = self._channels
        admitted = len(channels.admitted)
        for channel in changes.channels:
            channels.admit(channel)
        for (metric, segment, day), amount in changes.buckets.items():
            if segment[0] == "channel":
                segment = ("channel", channels.admit(segment[1]))
            self.buckets.add(metric, segment, day, amount)
        if len(channels.admitted) != admitted:
            self._admitted.put("admitted", channels.admitted)
        self._timeline.add_changes(changes.sums)
        if changes.accepted:
            self._accepted_count += changes.accepted
            self._counts.put("accepted", self._accepted_count)
        latest = changes.latest
        if latest is not None and (self.watermark is None or latest > self.watermark):
            self.watermark = latest
            self._marks.put(WATERMARK, latest)

    def _prepare(self, event: Event) -> Callable[[], None]:
        """Check the event's values (models.holdable.check_values) and compute everything
        it implies: a commit that only stores it (the digest is the caller's, when it
        remembers the id).

        Nothing here changes the ledger, so an event that fails leaves no trace: no
        watermark moved, no channel admitted, no bucket changed. An error while
        computing is an InvalidEventError on the field being computed."""
        check_values(event, self.policy)
        occurred_at = event.occurred_at
        day = event.occurred_day
        channel = _sender_channel(event)
        try:  # what the check passed cannot fail: a net, should the two ever part
            label = None if channel is None else self._channels.label(channel)
            change = self._change_of(event, day, label)
        except COMPUTE_ERRORS as error:
            raise cannot_hold("<event>", error) from error

        def commit() -> None:
            self._accepted_count += 1
            self._counts.put("accepted", self._accepted_count)
            if channel is not None:
                admitted = len(self._channels.admitted)
                self._channels.admit(channel)
                if len(self._channels.admitted) != admitted:
                    self._admitted.put("admitted", self._channels.admitted)
            if self.watermark is None or occurred_at > self.watermark:
                self.watermark = occurred_at
                self._marks.put(WATERMARK, occurred_at)
            change()

        return commit

    def _change_of(self, event: Event, day: dt.date, label: str | None) -> Callable[[], None]:
        """The change a holdable event makes to the entities, computed, not made yet."""
        change: Callable[[], None]
        match event:
            case LeadCreated():
                lead = self._lead_fact(event, day, label)

                def change() -> None:
                    self._change_lead(lead.lead_id, self._leads, lead)

            case LeadConverted():
                conversion = ConversionFact(
                    event.event_id, event.occurred_at, day, event.data.lead_id
                )

                def change() -> None:
                    self._change_lead(conversion.lead_id, self._conversions, conversion)

            case ContractSigned():
                fact = self._contract_fact(event, day, label)
                booked = fact.booked()
                _ = booked.term_end  # computed (and cached) before any change

                def change() -> None:
                    self._add_contract(fact, booked)

            case CustomerChurned():
                data = event.data
                churn = ChurnFact(
                    event.event_id, event.occurred_at, day,
                    Churn(data.account_id, data.contract_id, event.effective_date),
                )  # fmt: skip

                def change() -> None:
                    self._churns.put(churn.event_id, churn)
                    self._new_churns.append(churn)
                    self._timeline.add_churn(churn.churn)

            case SpendRecorded():
                assert label is not None
                spent = self._spend_contributions(event, day, label)

                def change() -> None:
                    self._add(spent, +1)

        return change

    # -- the dedup horizon (kept by the gate) ----------------------------------------

    @property
    def dedup_horizon(self) -> dt.timedelta:
        """How long past its event's day, behind the slowest source's mark, an id is
        remembered at least: the policy's, never shorter than the lateness."""
        return self._gate.dedup_horizon

    @property
    def forgotten_count(self) -> int:
        """Accepted ids forgotten so far: accepted_count less the ids remembered."""
        return self._gate.forgotten_count

    def forget_ids(self, limit: int) -> int:
        """Read up to ``limit`` entries of the ids' index by day, and forget the ids
        whose event's UTC day ended a horizon or more before the lateness mark; returns
        how many it forgot (models.id_gate.IdGate.forget_ids)."""
        return self._gate.forget_ids(limit)

    @property
    def pass_under_way(self) -> bool:
        """Whether the next :meth:`forget_ids` goes on with a pass under way
        (models.id_gate.IdGate.pass_under_way)."""
        return self._gate.pass_under_way

    @property
    def _forgetting(self) -> KeyedMap[tuple[str, ...]]:
        """The pass under way (``ledger.forgetting``), for checks."""
        return self._gate._forgetting

    def take_overflowed_channels(self) -> list[str]:
        """Sender channels sent to the overflow label since the last call, each only once."""
        return self._channels.take_overflowed()

    @property
    def admitted_channels(self) -> tuple[str, ...]:
        """The channels with a series of their own, in the order they were admitted."""
        return self._channels.admitted

    def _lead_fact(self, event: LeadCreated, day: dt.date, channel: str | None) -> LeadFact:
        data = event.data
        estimated = estimated_value(event)
        return LeadFact(
            event.event_id, event.occurred_at, day, data.lead_id, data.origin,
            channel or data.channel, estimated,
        )  # fmt: skip

    def _contract_fact(
        self, event: ContractSigned, day: dt.date, channel: str | None
    ) -> ContractFact:
        data = event.data
        acv, tcv, arr = contract_values(event, self.policy)
        return ContractFact(
            event.event_id, event.occurred_at, day, data.contract_id,
            data.account_id, data.lead_id, data.origin, channel, data.kind,
            data.start_date, data.term_months, acv, tcv, arr,
        )  # fmt: skip

    @property
    def accepted_count(self) -> int:
        return self._accepted_count

    # -- restatement ------------------------------------------------------------

    def _add(self, contributions: Iterable[Contribution], sign: int) -> None:
        for metric, segment, day, amount in contributions:
            self.buckets.add(metric, segment, day, amount if sign > 0 else amount.copy_negate())

    def _lead_contracts(self, lead_id: str) -> list[ContractFact]:
        """The contracts attributed from the lead, each read once."""
        found = []
        for contract_id in self._contracts_by_lead.get(lead_id) or ():
            contract = self._contracts.get(contract_id)
            if contract is not None and contract.lead_id == lead_id:
                found.append(contract)
        return found

    def _change_lead(
        self,
        lead_id: str,
        facts: KeyedMap[LeadFact] | KeyedMap[ConversionFact],
        fact: LeadFact | ConversionFact,
    ) -> None:
        """Restate what a lead and everything attributed from it add, if ``fact`` now
        represents its entity: only what changed. The group is read once; what it adds
        after is the same group with ``fact`` in its place."""
        lead = self._leads.get(lead_id)
        conversion = self._conversions.get(lead_id)
        current = lead if isinstance(fact, LeadFact) else conversion
        if current is not None and current.rank <= fact.rank:
            return
        contracts = self._lead_contracts(lead_id)
        before = _summed(_lead_group(lead, conversion, contracts))
        facts.put(lead_id, fact)  # type: ignore[arg-type]
        if isinstance(fact, LeadFact):
            lead = fact
        else:
            conversion = fact
        after = _summed(_lead_group(lead, conversion, contracts))
        for (metric, segment, day), change in _changes(before, after):
            self.buckets.add(metric, segment, day, change)

    def _add_contract(self, fact: ContractFact, booked: BookedContract) -> None:
        contract_id = fact.contract_id
        old = self._contracts.get(contract_id)
        if old is not None and old.rank <= fact.rank:
            return  # the contract is represented by an earlier event
        if old is not None:
            self._add(self._contract_contributions(old), -1)
        self._contracts.put(contract_id, fact)
        if fact.lead_id is not None:
            ids = self._contracts_by_lead.get(fact.lead_id) or ()
            if contract_id not in ids:
                self._contracts_by_lead.put(fact.lead_id, tuple(sorted((*ids, contract_id))))
        self._add(self._contract_contributions(fact), +1)
        self._touched_contracts[contract_id] = booked
        self._timeline.put_contract(booked)

    # -- what each fact adds ----------------------------------------------------

    def lead_attribution(self, lead_id: str | None) -> tuple[str, str]:
        lead = self._leads.get(lead_id) if lead_id is not None else None
        if lead is None:
            return UNKNOWN, UNKNOWN
        return lead.origin, lead.channel

    def contract_attribution(self, contract: ContractSigned) -> tuple[str, str]:
        data = contract.data
        return self._attribution(data.lead_id, data.origin, data.channel)

    def _attribution(
        self, lead_id: str | None, origin: str | None, channel: str | None
    ) -> tuple[str, str]:
        """The contract's own origin and channel, else its lead's, else unknown."""
        lead_origin, lead_channel = self.lead_attribution(lead_id)
        return origin or lead_origin, channel or lead_channel

    def contract_values(self, event: ContractSigned) -> tuple[Decimal, Decimal, Decimal]:
        """ACV, TCV and ARR contribution of a contract, in the reporting currency."""
        return contract_values(event, self.policy)

    def _contract_contributions(self, contract: ContractFact) -> Iterator[Contribution]:
        attribution = self._attribution(contract.lead_id, contract.origin, contract.channel)
        return _contract_contributions(contract, attribution)

    def _spend_contributions(
        self, event: SpendRecorded, day: dt.date, channel: str
    ) -> list[Contribution]:
        amount = spend_amount(event, self.policy)
        return [("spend", segment, day, amount) for segment in (ALL, ("channel", channel))]

    # -- the book -----------------------------------------------------------------

    def booked_contract(self, contract_id: str) -> BookedContract:
        contract = self._contracts.get(contract_id)
        if contract is None:
            raise KeyError(contract_id)
        return contract.booked()

    def booked_contracts(self) -> list[BookedContract]:
        """Every contract as booked, by contract id: a scan of the kept contracts."""
        return [fact.booked() for _, fact in sorted(self._contracts.items())]

    def contract_page(self, after: str | None, limit: int) -> list[BookedContract]:
        """Up to ``limit`` contracts, as booked, by contract id after ``after`` (from the
        first, if None): every contract, a page at a time."""
        return [fact.booked() for _, fact in self._contracts.items_after(after, limit)]

    def book_entries(self) -> list[BookEntry]:
        """The book (contracts with their end dates): a scan, for checks and reports."""
        return build_book(self.booked_contracts(), self.churns())

    def book_summary(
        self, as_of: dt.date, windows: list[Window], churn_window: Window
    ) -> BookSummary:
        """What ``summarize(self.book_entries(), ...)`` gives, from the timeline kept up to
        date as contracts and churns arrive: ``O(windows x log days)``, no scan."""
        return self._timeline.summary(as_of, windows, churn_window)

    def churns(self) -> list[Churn]:
        return [fact.churn for fact in sorted((fact for _, fact in self._churns.items()),
                                              key=_rank)]  # fmt: skip

    def take_delta(self, *, full: bool = False, contracts: bool = True) -> StateDelta:
        """What changed since the last delta (everything, if ``full``), for a stored copy.

        A full delta with ``contracts`` False holds no contract: the caller reads them
        with :meth:`contract_page`, which a contract changed meanwhile does not escape,
        as the next delta holds it."""
        if full:
            self.buckets.take_touched()
            self._touched_contracts.clear()
            self._new_churns.clear()
            return StateDelta(
                full=True,
                buckets={
                    (key, day): amount
                    for key, days in self.buckets.as_dict().items()
                    for day, amount in days.items()
                },
                contracts={c.contract_id: c for c in self.booked_contracts()} if contracts else {},
                churns={event_id: fact.churn for event_id, fact in self._churns.items()},
            )
        delta = StateDelta(
            buckets=self.buckets.take_touched(),
            contracts=dict(self._touched_contracts),
            churns={fact.event_id: fact.churn for fact in self._new_churns},
        )
        self._touched_contracts.clear()
        self._new_churns.clear()
        return delta

    def store_changes(self) -> None:
        """Write what is kept in memory between flushes (each changed bucket day) to the
        maps: before they are flushed, or before another ledger is made on them."""
        self.buckets.store_changes()

    def prune(self, today: dt.date) -> int:
        """Drop daily buckets past the retention; returns how many days were dropped
        (models.buckets.DailyBuckets.prune: nothing is looked at unless one may be)."""
        return self.buckets.prune(today - dt.timedelta(days=self.policy.retention_days))


def _lead_group(
    lead: LeadFact | None, conversion: ConversionFact | None, contracts: list[ContractFact]
) -> Iterator[Contribution]:
    """What a lead, its conversion and the contracts attributed from it add."""
    attribution = (UNKNOWN, UNKNOWN) if lead is None else (lead.origin, lead.channel)
    if lead is not None:
        yield from _lead_contributions(lead)
    if conversion is not None:
        yield from _conversion_contributions(conversion, attribution)
    for contract in contracts:
        own = (contract.origin or attribution[0], contract.channel or attribution[1])
        yield from _contract_contributions(contract, own)
