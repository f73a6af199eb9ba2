"""revpulse dev keeps running when a child dies: it restarts it and says so.

One `revpulse dev` subprocess, its own broker, Redis and worker: the worker is killed
(the broker keeps the events), then Redis (the worker republishes everything with no new
event), then the broker (in memory only: dev says every event is gone and starts again
empty). At the end nothing dev started may be left running.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from sinks.readback import read_current
from sinks.redis_keys import RedisKeys
from streams.devstack.stack import free_port
from tests.integration.workers import wait_for

pytestmark = pytest.mark.timeout(300)
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Dev:
    process: subprocess.Popen[bytes]
    output_path: Path
    web_port: int
    seen_pids: set[int] = field(default_factory=set)

    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    def wait_output(self, pattern: str, timeout_seconds: float = 90) -> re.Match[str]:
        def found() -> re.Match[str] | None:
            assert self.process.poll() is None, f"dev exited:\n{self.output()[-3000:]}"
            return re.search(pattern, self.output())

        match: re.Match[str] = wait_for(found, timeout_seconds, f"{pattern!r} in dev's output")
        return match

    @property
    def run_dir(self) -> Path:
        return Path(self.wait_output(r"logs in (\S+)").group(1))

    @property
    def redis_url(self) -> str:
        return self.wait_output(r"export REVPULSE_KAFKA_BOOTSTRAP=\S+ REVPULSE_REDIS_URL=(\S+)")[1]

    def pids(self) -> dict[str, int]:
        pids: dict[str, int] = json.loads((self.run_dir / "pids.json").read_text())
        self.seen_pids.update(pids.values())
        return pids

    def get(self, path: str) -> int:
        url = f"http://127.0.0.1:{self.web_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            return 0

    def post_leads(self, count: int) -> None:
        now = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
        events = [
            {
                "event_id": f"dev-{uuid.uuid4().hex}",
                "type": "lead.created",
                "occurred_at": now,
                "source": "test",
                "data": {"lead_id": uuid.uuid4().hex, "origin": "marketing", "channel": "web"},
            }
            for _ in range(count)
        ]
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.web_port}/v1/events",
            data=json.dumps(events).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )  # unsigned: dev runs the worker in insecure dev mode when no secret is set
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 202

    def leads(self) -> Decimal | None:
        import asyncio

        points, _meta = asyncio.run(read_current(self.redis_url, RedisKeys("revpulse")))
        for point in points:
            if (point.metric, point.window, point.origin, point.channel) == (
                "leads", "30d", "all", "all",
            ):  # fmt: skip
                return point.value
        return None

    def wait_leads(self, expected: int, timeout_seconds: float = 60) -> None:
        wait_for(lambda: self.leads() == expected, timeout_seconds, f"{expected} leads in Redis")

    def wait_new_pid(self, name: str, old: int, timeout_seconds: float = 60) -> int:
        pid: int = wait_for(
            lambda: (new := self.pids().get(name)) not in (None, old) and new,
            timeout_seconds,
            f"a new {name} process",
        )
        return pid


def alive(pid: int) -> bool:
    """Running (a zombie, dead but not reaped, does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line, environment or working directory contains
    ``text`` (redis-server overwrites its environment with its title, but works in --dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            blob = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
            blob += os.readlink(entry / "cwd").encode()
        except OSError:
            continue
        if text.encode() in blob and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[Dev]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("REVPULSE_")}
    env.update(REVPULSE_DATA_DIR=str(tmp_path / "data"), REVPULSE_PUBLISH_INTERVAL_SECONDS="0.5")
    web_port = free_port()
    output_path = tmp_path / "dev.out"
    with output_path.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "dev", "--web-port", str(web_port),
             "--status-every", "1"],
            cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    handle = Dev(process, output_path, web_port)
    run_dir: Path | None = None
    try:
        handle.wait_output("revpulse is running")
        run_dir = handle.run_dir
        handle.pids()
        yield handle
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        left = [pid for pid in handle.seen_pids if alive(pid)]
        if run_dir is not None:
            left += processes_mentioning(str(run_dir))
        for pid in left:  # clean up before failing, so no test leaves a process
            os.kill(pid, signal.SIGKILL)
        assert not left, f"left running: {left}\n{handle.output()[-3000:]}"


def test_dev_restarts_what_dies_and_says_what_was_lost(dev: Dev) -> None:
    first = dev.pids()
    assert set(first) == {"dev", "broker", "redis", "worker"}
    assert first["dev"] == dev.process.pid
    # the scan the fixture ends with does find dev's children
    assert {first["redis"], first["worker"]} <= set(processes_mentioning(str(dev.run_dir)))
    assert "REVPULSE_KAFKA_BOOTSTRAP=127.0.0.1:" in dev.output()
    dev.post_leads(3)
    dev.wait_leads(3)

    # the worker crashes: dev restarts it; the broker kept the events it had accepted
    os.kill(first["worker"], signal.SIGKILL)
    dev.wait_output(r"worker exited with code -9; restarting in 1 s \(restart 1\)")
    worker = dev.wait_new_pid("worker", first["worker"])
    wait_for(lambda: dev.get("/readyz") == 200, 90, "/readyz of the new worker")
    now = dev.pids()
    assert (now["broker"], now["redis"]) == (first["broker"], first["redis"])
    assert alive(first["broker"]) and alive(first["redis"]) and dev.process.poll() is None
    dev.post_leads(2)
    dev.wait_leads(5)  # rebuilt from the changelog, plus the 2 new ones
    dev.wait_output(r"\d\d:\d\d:\d\d  .*ARR 0 \(USD\)")  # the status line, every second

    # Redis dies: dev restarts it empty on the same port; the worker, with nothing new to
    # publish, notices the new server (run_id) and writes everything again
    os.kill(first["redis"], signal.SIGKILL)
    dev.wait_output(r"redis exited with code -9; restarting it on port \d+ in 1 s")
    dev.wait_new_pid("redis", first["redis"])
    dev.wait_leads(5)
    assert dev.pids()["worker"] == worker

    # the broker dies: everything it held is gone; dev says so and starts again empty
    os.kill(first["broker"], signal.SIGKILL)
    dev.wait_output(
        r"the embedded broker exited with code -9: it keeps data in memory only, so every "
        r"event sent since it started at \d\d:\d\d:\d\d is gone"
    )
    dev.wait_new_pid("broker", first["broker"])
    dev.wait_new_pid("worker", worker, timeout_seconds=90)
    wait_for(lambda: dev.get("/readyz") == 200, 120, "/readyz after the broker restart")
    dev.post_leads(1)
    dev.wait_leads(1)  # only the event sent to the new, empty broker
    assert dev.process.poll() is None
