"""What the worker measures of itself: how late its event loop wakes, how far each
consumer is behind, and whether table recovery is over."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sinks.ops_metrics import OpsMetrics

LOOP_PROBE_SECONDS = 0.05  # the event-loop lag probe's sleep
CONSUMER_LAG_EVERY_SECONDS = 5.0


def recovery_done(app: Any) -> bool:
    """Table recovery for the current assignment is over. Faust sets ``completed`` once
    and never clears it, so a rebalance is told by ``app.rebalancing``, which stays set
    until the new assignment's changelogs are read and the streams resume."""
    recovery = app.tables.recovery
    return bool(recovery.completed.is_set()) and not app.rebalancing


def changelog_records_left(app: Any) -> int:
    """Changelog records the table recovery of the active partitions has yet to read."""
    return int(app.tables.recovery.active_remaining_total())


class Probes:
    def __init__(self, app: Any, ops: OpsMetrics) -> None:
        self.app = app
        self.ops = ops

    async def loop_lag(self) -> None:
        """How late a short sleep wakes: the longest the loop was held by other work."""
        while True:
            started = time.perf_counter()
            await asyncio.sleep(LOOP_PROBE_SECONDS)
            self.ops.loop_lag.observe(max(0.0, time.perf_counter() - started - LOOP_PROBE_SECONDS))

    async def consumer_lag(self) -> None:
        """Messages behind the end of each partition assigned to this worker."""
        consumer = self.app.consumer
        for tp in self.app.assignor.assigned_actives():
            try:
                highwater = consumer.highwater(tp)
                position = await consumer.position(tp)
            except Exception:
                continue
            if highwater is not None and position is not None:
                lag = max(0, highwater - position)
                self.ops.consumer_lag.labels(tp.topic, str(tp.partition)).set(lag)
