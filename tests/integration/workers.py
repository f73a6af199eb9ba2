"""Worker processes for the integration tests, each test on its own topics and keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from streams.devstack.stack import ChildProcess, free_port, spawn
from streams.settings import Settings

# every test worker requires signed requests on POST /v1/events with this secret
TEST_INGEST_SECRET = "test-ingest-secret-0123456789"


def isolated_settings(kafka: str, redis: str, **overrides: Any) -> Settings:
    """Settings with a unique app id, topics and Redis prefix for one test."""
    tag = uuid.uuid4().hex[:8]
    values: dict[str, Any] = {
        "kafka_bootstrap": kafka,
        "redis_url": redis,
        "app_id": f"rp-{tag}",
        "events_topic": f"rp-{tag}-events",
        "by_id_topic": f"rp-{tag}-by-id",
        "by_entity_topic": f"rp-{tag}-by-entity",
        "facts_topic": f"rp-{tag}-facts",
        "dead_letter_topic": f"rp-{tag}-dead-letters",
        "late_topic": f"rp-{tag}-late",
        "alerts_topic": f"rp-{tag}-alerts",
        "redis_prefix": f"rp-{tag}",
        "clock": "event",
        # partitions interleave on the way to the ledger: the scenarios span 9 days
        "lateness_seconds": 30 * 86400,
        "publish_interval_seconds": 0.3,
        "batch_within_seconds": 0.05,
        "ingest_secrets": [TEST_INGEST_SECRET],
    }
    values.update(overrides)
    return Settings(**values)


def _reveal(value: Any) -> Any:
    """The settings dump with every SecretStr shown, so a child process gets the secrets."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, list):
        return [_reveal(item) for item in value]
    if isinstance(value, dict):
        return {key: _reveal(item) for key, item in value.items()}
    return value


def settings_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    dumped = settings.model_dump(mode="json")
    for name, value in dumped.items():
        value = _reveal(getattr(settings, name)) if "secret" in name else value
        if isinstance(value, list | dict):
            text = json.dumps(value)
        elif name == "redis_url":
            text = settings.redis_url.get_secret_value()
        elif value is None:
            continue
        else:
            text = str(value)
        env[f"REVPULSE_{name.upper()}"] = text
    return env


@dataclass
class WorkerHandle:
    settings: Settings
    child: ChildProcess
    web_port: int
    log_dir: Path
    _stopped: bool = field(default=False)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.web_port}{path}"

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url(path), timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def metrics_text(self) -> str:
        return self.get("/metrics")[1]

    def kill(self) -> None:
        """SIGKILL: a crash, no clean shutdown."""
        self.child.kill()
        self._stopped = True

    def stop(self) -> None:
        if not self._stopped:
            self.child.stop(timeout_seconds=20)
            self._stopped = True

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.child.log_path.read_text(errors="replace").splitlines()[-lines:])


def start_worker(settings: Settings, log_dir: Path, name: str = "worker") -> WorkerHandle:
    web_port = free_port()
    settings = settings.model_copy(update={"web_port": web_port})
    env = settings_env(settings)
    env["REVPULSE_DATA_DIR"] = str(log_dir / name)
    argv = [sys.executable, "-m", "streams.cli", "worker"]
    child = spawn(name, argv, log_dir, env)
    handle = WorkerHandle(settings, child, web_port, log_dir)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            handle.stop()
            raise RuntimeError(f"worker exited early:\n{handle.log_tail()}")
        try:
            status, _ = handle.get("/readyz")
            if status == 200:
                return handle
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.2)
    handle.stop()
    raise RuntimeError(f"worker not ready in 60 s:\n{handle.log_tail()}")


def wait_for(predicate: Any, timeout_seconds: float = 60, what: str = "condition") -> Any:
    """Poll until ``predicate()`` returns something truthy; return it."""
    deadline = time.monotonic() + timeout_seconds
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout_seconds} s waiting for {what}; last={last!r}")


def run_cli(
    settings: Settings, *args: str, timeout_seconds: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=timeout_seconds,
        check=False,
    )
