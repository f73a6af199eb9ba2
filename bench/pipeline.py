"""The revpulse worker as a subprocess, read through its /metrics page."""

from __future__ import annotations

import json
import math
import os
import secrets
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from streams.devstack.stack import ChildProcess, spawn
from streams.settings import Settings

LATENCY = "revpulse_event_to_publish_latency_seconds"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def worker_env(overrides: Mapping[str, Any]) -> dict[str, str]:
    """This environment plus ``REVPULSE_<NAME>`` for each override.

    Only the overrides are set, so every other setting keeps its default (or the value
    your environment gives it). The worker refuses to start without an ingestion secret;
    the benchmark does not use HTTP ingestion, so it gets a random one for this run.
    """
    env = dict(os.environ)
    env.setdefault("REVPULSE_INGEST_SECRETS", json.dumps([secrets.token_hex(16)]))
    for name, value in overrides.items():
        text = json.dumps(value) if isinstance(value, list | dict) else str(value)
        env[f"REVPULSE_{name.upper()}"] = text
    return env


def parse_samples(text: str) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def total(samples: Samples, name: str) -> float:
    """The sum of a series over all its label sets (0 when absent)."""
    return sum(value for (sample, _labels), value in samples.items() if sample == name)


@dataclass(frozen=True)
class Histogram:
    """Cumulative bucket counts by upper bound (``math.inf`` last), count and sum."""

    buckets: tuple[tuple[float, float], ...]
    count: float
    sum: float

    @classmethod
    def from_samples(cls, samples: Samples, name: str) -> Histogram:
        buckets = sorted(
            (float(dict(labels)["le"]), value)
            for (sample, labels), value in samples.items()
            if sample == f"{name}_bucket"
        )
        return cls(tuple(buckets), total(samples, f"{name}_count"), total(samples, f"{name}_sum"))

    def minus(self, earlier: Histogram) -> Histogram:
        before = dict(earlier.buckets)
        buckets = tuple((le, value - before.get(le, 0.0)) for le, value in self.buckets)
        return Histogram(buckets, self.count - earlier.count, self.sum - earlier.sum)

    def quantile(self, q: float) -> float | None:
        """Estimate like PromQL ``histogram_quantile``: linear within the bucket.

        None without observations; the largest finite bound if it falls in ``+Inf``.
        """
        if self.count <= 0 or not self.buckets:
            return None
        rank = q * self.count
        lower, below = 0.0, 0.0
        for upper, cumulative in self.buckets:
            if cumulative >= rank:
                if math.isinf(upper):
                    return lower
                share = (rank - below) / (cumulative - below) if cumulative > below else 1.0
                return lower + (upper - lower) * share
            lower, below = upper, cumulative
        return lower


DATA_DIR = "worker-data"  # under the run's log directory


class BenchError(RuntimeError):
    """A benchmark cannot go on; the message is its one-line reason."""


class WorkerProcess:
    """``python -m streams.cli worker`` with ``overrides`` (``settings`` is what they make)."""

    def __init__(
        self,
        settings: Settings,
        overrides: Mapping[str, Any],
        log_dir: Path,
        metrics_timeout_seconds: float = 10.0,
        data_dir: str | Path = DATA_DIR,  # under log_dir, unless absolute
        name: str = "worker",  # its log is <log_dir>/<name>.log
    ) -> None:
        self.settings = settings
        self.metrics_timeout_seconds = metrics_timeout_seconds
        env = worker_env(overrides)
        env["REVPULSE_DATA_DIR"] = str(log_dir / data_dir)
        argv = [sys.executable, "-m", "streams.cli", "worker"]
        self.child: ChildProcess = spawn(name, argv, log_dir, env)

    def _get(self, path: str, timeout_seconds: float = 10.0) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.settings.web_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=timeout_seconds) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def check_alive(self) -> None:
        if self.child.process.poll() is not None:
            raise RuntimeError(
                f"the worker exited with code {self.child.process.returncode}:\n{self.log_tail()}"
            )

    def wait_ready(self, timeout_seconds: float) -> float:
        """Poll /readyz until 200; return the monotonic time it first answered 200."""
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if self._get("/readyz")[0] == 200:
                    return time.monotonic()
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"the worker was not ready in {timeout_seconds} s:\n{self.log_tail()}")

    def samples(self) -> Samples:
        self.check_alive()
        timeout = self.metrics_timeout_seconds
        try:
            status, body = self._get("/metrics", timeout)
        except OSError as error:
            reason = getattr(error, "reason", error)
            if isinstance(reason, TimeoutError):
                raise BenchError(
                    f"the worker's /metrics did not answer within {timeout:g} s (is it "
                    f"stalled? see {self.child.log_path})"
                ) from error
            raise BenchError(f"the worker's /metrics failed: {reason}") from error
        if status != 200:
            raise BenchError(f"/metrics answered {status}")
        return parse_samples(body)

    def log_tail(self, lines: int = 40) -> str:
        text = self.child.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        self.child.stop(timeout_seconds=20)


def business_figures(samples: Samples) -> Samples:
    """The published metrics (every series with a ``window`` label), not the operational ones."""
    return {key: value for key, value in samples.items() if "window" in dict(key[1])}


def counters(samples: Samples) -> dict[str, float]:
    """The operational counters a benchmark run reports next to its figures."""
    return {
        "consumed": total(samples, "revpulse_events_consumed_total"),
        "rejected": total(samples, "revpulse_events_rejected_total"),
        "duplicates": total(samples, "revpulse_events_duplicate_total"),
        "late": total(samples, "revpulse_events_late_total"),
        "ledger": total(samples, "revpulse_ledger_events"),
        "sink_errors": total(samples, "revpulse_sink_errors_total"),
        "resident_memory_mib": total(samples, "process_resident_memory_bytes") / 2**20,
        "full_gc_collections": labelled(samples, "python_gc_collections_total", generation="2"),
        "publishes": labelled(samples, "revpulse_publish_duration_seconds_count", step="compute"),
        **{
            f"publish_{step}_mean_ms": 1000
            * labelled(samples, "revpulse_publish_duration_seconds_sum", step=step)
            / max(1.0, labelled(samples, "revpulse_publish_duration_seconds_count", step=step))
            for step in ("compute", "redis", "prometheus")
        },
    }


def labelled(samples: Samples, name: str, **labels: str) -> float:
    """The sum of a series over the label sets that include ``labels`` (0 when absent)."""
    wanted = set(labels.items())
    return sum(
        value for (sample, have), value in samples.items() if sample == name and wanted <= set(have)
    )
