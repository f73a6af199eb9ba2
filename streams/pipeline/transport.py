"""Faust's Kafka transport with a configurable consumer fetch wait, and its table
recovery with Tansu's partition end allowed for.

Faust 0.15 builds its worker consumer with ``fetch_max_wait_ms=1500`` and no setting
for it. A broker that does not answer a waiting fetch as soon as records arrive
(Tansu, measured: a record produced while a fetch waits is read about 500 ms later
with a 1,500 ms wait, about 16 ms with 100 ms) then adds that wait to every hop of
the pipeline. Kafka itself answers at once, so a short wait costs it only a few more
empty fetches while idle.

Tansu reports a partition's end as its last batch's base offset + 1. A table flush ends
with a record in a batch of its own, but a worker killed between a flush's batches
leaves a changelog whose last batch holds many records; a standby that read it all
holds an offset past the reported end, and when it becomes the active owner Faust's
recovery refused that offset (ConsistencyError: the worker stopped, seen in the soak
with kills). An offset inside the last batch is set back to the reported end - 1 for the
recovery (the stages read the last batch directly: log_table.keep_records_past_recovery);
one past the batch's true end still fails the check, as the broker then lost records.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, ClassVar

import faust
from aiokafka import AIOKafkaConsumer
from faust.tables.manager import TableManager as FaustTableManager
from faust.tables.recovery import Recovery as FaustRecovery
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, TransportT
from faust.types.transports import ConsumerT

from streams.kafka.clients import read_last_batch

log = logging.getLogger(__name__)


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: faust_aiokafka.Transport) -> AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        app = self.consumer.app
        if isinstance(app, RevpulseApp):
            # read by AIOKafkaConsumer.start() when it builds its fetcher
            consumer._fetch_max_wait_ms = app.fetch_max_wait_ms
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer: ClassVar[Any] = _Consumer


class Recovery(FaustRecovery):
    # named as Faust's: its logs read "[^---Recovery]", which bench/worker_log.py parses

    async def _build_offsets(
        self, consumer: ConsumerT, tps: set[TP], destination: Counter[TP], title: str
    ) -> None:
        await super()._build_offsets(consumer, tps, destination, title)
        held = [tp for tp in tps if destination[tp] is not None and destination[tp] >= 0]
        if not held:
            return
        reported_ends = await consumer.highwaters(*held)
        broker = self.app.conf.broker[0]
        bootstrap = f"{broker.host}:{broker.port}"
        for tp in held:
            offset, reported_end = destination[tp], reported_ends.get(tp)
            if reported_end is None or offset < reported_end:
                continue
            last_batch = await read_last_batch(bootstrap, tp.topic, tp.partition)
            if last_batch and offset <= last_batch[-1].offset:  # inside the last batch
                log.info("%s %s[%d]: local offset %d is inside the changelog's last batch, "
                         "which the broker reports as ending at %d: recovery reads from %d",
                         title, tp.topic, tp.partition, offset, reported_end,
                         reported_end)  # fmt: skip
                destination[tp] = reported_end - 1


class TableManager(FaustTableManager):
    @property
    def recovery(self) -> FaustRecovery:
        if self._recovery is None:
            self._recovery = Recovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery


class RevpulseApp(faust.App):
    """A Faust app whose worker consumer waits at most ``fetch_max_wait_ms`` per fetch,
    and whose table recovery allows for Tansu's reported partition end."""

    def __init__(self, *args: Any, fetch_max_wait_ms: int, **kwargs: Any) -> None:
        self.fetch_max_wait_ms = fetch_max_wait_ms
        kwargs.setdefault("TableManager", TableManager)
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> TransportT:
        return _Transport(self.conf.broker_consumer, self)
