"""Running the Faust worker in this process."""

from __future__ import annotations

import faust

from streams.settings import Settings


def run_worker(app: faust.App, settings: Settings) -> int:
    worker = faust.Worker(app, loglevel=settings.log_level.upper(), redirect_stdouts=False)
    worker.execute_from_commandline()
    return 0
