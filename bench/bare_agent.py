"""A bare Faust agent: reads a topic in batches as the intake does and decodes each value
with ``json.loads``; no validation, no table, no publishing. The scale benchmark runs it
as a subprocess on the events topic it loaded and compares the pipeline with it.

``python -m bench.bare_agent BOOTSTRAP TOPIC PARTITIONS COUNT STATUS_FILE DATA_DIR``
writes ``{"events": n, "first": t0, "last": t1, "done": false}`` (``time.monotonic`` of
this process) to STATUS_FILE about every PROGRESS_EVERY_SECONDS while it reads, and with
``"done": true`` once it has decoded COUNT events, then keeps running until stopped. The
file is replaced whole each time (written aside, then renamed).
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import faust

from streams.pipeline.transport import RevpulseApp
from streams.settings import Settings

PROGRESS_EVERY_SECONDS = 2.0


def bare_app(
    bootstrap: str, topic_name: str, partitions: int, count: int, status: Path, data_dir: Path
) -> faust.App:
    defaults = Settings()  # the worker's consumer settings: fetch wait, batches, session
    data_dir.mkdir(parents=True, exist_ok=True)
    app = RevpulseApp(
        f"bare-{uuid.uuid4().hex[:8]}",
        fetch_max_wait_ms=defaults.fetch_max_wait_ms,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        datadir=str(data_dir),
        web_enabled=False,
        topic_partitions=partitions,
        broker_session_timeout=defaults.session_timeout_seconds,
        broker_heartbeat_interval=1.0,
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
    )
    topic = app.topic(
        topic_name, partitions=partitions, key_serializer="raw", value_serializer="raw"
    )
    seen = {"events": 0, "first": 0.0, "said": 0.0}

    def report(done: bool) -> None:
        now = time.monotonic()
        seen["said"] = now
        aside = status.with_suffix(".part")
        aside.write_text(
            json.dumps(
                {"events": seen["events"], "first": seen["first"], "last": now, "done": done}
            )
        )
        aside.replace(status)

    async def decode(stream: Any) -> AsyncIterator[None]:
        async for values in stream.take(
            defaults.batch_max_events, within=defaults.batch_within_seconds
        ):
            if not seen["events"]:
                seen["first"] = time.monotonic()
            for value in values:
                json.loads(value)
            if seen["events"] < count:
                seen["events"] += len(values)
                if seen["events"] >= count:
                    report(done=True)
                elif time.monotonic() - seen["said"] >= PROGRESS_EVERY_SECONDS:
                    report(done=False)
            yield None

    app.agent(topic, name="bare")(decode)
    return app


def main(argv: Sequence[str]) -> int:
    bootstrap, topic, partitions, count, status, data_dir = argv
    app = bare_app(bootstrap, topic, int(partitions), int(count), Path(status), Path(data_dir))
    worker = faust.Worker(app, loglevel="WARNING", redirect_stdouts=False)
    worker.execute_from_commandline()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
