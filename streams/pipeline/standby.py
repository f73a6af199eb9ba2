"""Standby copies of the table partitions a worker does not hold, read in bulk.

Faust's own standby replicas take every changelog record through its per-message
consumer path: a standby of the ledger cost about the owner's ledger work again in
CPU (bench/README.md, "Scale-out"). Instead, with REVPULSE_TABLE_STANDBY_REPLICAS of 1
or more (and Faust's own standby replicas off), each worker follows the changelog
partitions of every table partition it does not hold, with a plain consumer: each
fetch is written to the local store in one batch, and the store's persisted offset
moved past it, so a takeover's recovery reads only what was written since.

Order with Faust's recovery: every rebalance starts by revoking every partition
(Faust's ``on_partitions_revoked``), and :meth:`StandbyFollower.stop` cancels the
follower there, before any recovery reads a persisted offset. A fetch is written in
one synchronous step, so a cancelled follower writes nothing after its cancellation.
After the assignment (``on_partitions_assigned``) it follows what the worker does not
hold actively.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.kafka.clients import start_client

log = logging.getLogger(__name__)
FETCH_WAIT_MS = 1000  # a caught-up follower waits this long on the broker per fetch
STARTED = "following changelog partitions as a standby"  # bench.worker_log reads this


class FollowedStore(Protocol):
    """A table partition's local store, as the follower writes it."""

    def persisted_offset(self) -> int | None: ...

    def keep_followed(self, records: Sequence[Any], highwater: int | None) -> None: ...


@dataclass(frozen=True)
class Followed:
    changelog: str  # the table's changelog topic
    partition: int
    store: FollowedStore


class StandbyFollower:
    """Follows, in the background, the changelog partitions ``not_held()`` names."""

    def __init__(self, bootstrap: str, not_held: Callable[[], list[Followed]]) -> None:
        self.bootstrap = bootstrap
        self.not_held = not_held
        self.task: asyncio.Task[None] | None = None

    def stop(self) -> None:
        """Cancel the follower: it writes nothing from here on."""
        if self.task is not None:
            self.task.cancel()
            self.task = None

    def start(self) -> None:
        """Follow what the worker does not hold now (after stopping any follower)."""
        self.stop()
        followed = self.not_held()
        if followed:
            self.task = asyncio.ensure_future(self.follow(followed))

    async def on_revoked(self, *_args: Any, **_kwargs: Any) -> None:
        """Faust's on_partitions_revoked (every rebalance starts so) and on stop."""
        self.stop()

    async def on_assigned(self, *_args: Any, **_kwargs: Any) -> None:
        """Faust's on_partitions_assigned."""
        self.start()

    async def follow(self, followed: list[Followed]) -> None:
        by_place = {TopicPartition(f.changelog, f.partition): f.store for f in followed}
        names = ", ".join(f"{f.changelog}[{f.partition}]" for f in followed)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
            auto_offset_reset="earliest", fetch_max_wait_ms=FETCH_WAIT_MS,
        )  # fmt: skip
        try:
            await start_client(consumer, self.bootstrap)
            consumer.assign(list(by_place))
            for place, store in by_place.items():
                held = store.persisted_offset()
                consumer.seek(place, 0 if held is None else held + 1)
            log.info("%s: %s", STARTED, names)
            while True:
                fetched = await consumer.getmany(timeout_ms=FETCH_WAIT_MS)
                for place, records in fetched.items():
                    if records:
                        by_place[place].keep_followed(records, consumer.highwater(place))
        except Exception:  # a cancellation is no Exception: it goes through
            log.exception("following %s as a standby stopped; a takeover reads the "
                          "changelog from where the local store stands", names)  # fmt: skip
        finally:
            await consumer.stop()
