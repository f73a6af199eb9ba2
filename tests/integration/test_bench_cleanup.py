"""A benchmark or soak that fails, or is stopped, leaves no process behind and says why
in one line.

Each run gets a marker in its environment, which every process it starts inherits; after
it exits, no live process may carry the marker (found through /proc, even when orphaned).
redis-server overwrites its environment with its process title, so a process working in
the run's log directory (redis-server --dir) counts too.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.integration.workers import wait_for

pytestmark = pytest.mark.timeout(240)
REPO = Path(__file__).resolve().parents[2]
MARKER = "REVPULSE_BENCH_TEST_MARKER"  # not a setting: the bench and its children ignore it


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def marked(marker: str, log_dir: str | None = None) -> dict[int, str]:
    """Live processes with ``MARKER=marker`` in their environment, or working in
    ``log_dir``: pid -> command line."""
    wanted = f"{MARKER}={marker}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        in_run = wanted in environ or (log_dir is not None and cwd.startswith(log_dir))
        if in_run and alive(int(entry.name)):
            found[int(entry.name)] = cmdline
    return found


def log_dir_of(stderr: str) -> str:
    found = re.search(r"logs in (/\S+)\)", stderr)
    assert found, stderr[-3000:]
    return found.group(1)


def kill_marked(marker: str, stderr: str) -> dict[int, str]:
    """Kill whatever was left (so this test leaves nothing either); what was left."""
    found = re.search(r"logs in (/\S+)\)", stderr)
    left = marked(marker, found.group(1) if found else None)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    return left


def run_marked(*args: str) -> tuple[int, str, dict[int, str]]:
    """Run ``python -m args``, marked; its exit status, stderr and what it left running."""
    marker, env = marked_env()
    process = subprocess.Popen(
        [sys.executable, "-m", *args], cwd=REPO, env=env, text=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    stderr = ""
    try:
        _out, stderr = process.communicate(timeout=200)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        left = kill_marked(marker, stderr)
    return process.returncode, stderr, left


def marked_env() -> tuple[str, dict[str, str]]:
    marker = uuid.uuid4().hex
    env = {name: value for name, value in os.environ.items() if not name.startswith("REVPULSE_")}
    env[MARKER] = marker
    return marker, env


def test_the_scan_finds_a_marked_process() -> None:
    marker, env = marked_env()
    sleeper = subprocess.Popen(["sleep", "60"], env=env)
    try:
        # Popen returns once exec has closed the child's inherited pipe, which the
        # kernel does before it lays out the new environment: /proc/<pid>/environ can
        # read empty for a moment (the clean-clone CI on 8d0cf68 saw it).
        wait_for(lambda: list(marked(marker)) == [sleeper.pid], 10, "the marked sleeper")
    finally:
        sleeper.kill()
        sleeper.wait()
    assert marked(marker) == {}
    assert os.getpid() in marked("no such marker", os.getcwd())  # and the working directory


def test_a_metrics_timeout_is_one_failure_line_and_stops_every_process() -> None:
    code, stderr, left = run_marked(
        "bench.throughput", "--events", "200", "--quick", "--metrics-timeout", "0.00001"
    )
    assert code == 1, stderr[-3000:]
    assert "bench FAILED: the worker's /metrics did not answer within 1e-05 s" in stderr
    assert "Traceback" not in stderr, stderr[-3000:]
    assert "starting the revpulse worker" in stderr  # it got as far as the worker
    assert left == {}, left


def test_sigterm_during_a_run_stops_every_process(tmp_path: Path) -> None:
    marker, env = marked_env()
    stderr_path = tmp_path / "bench.err"
    with stderr_path.open("wb") as stderr:
        bench = subprocess.Popen(
            [sys.executable, "-m", "bench.throughput", "--events", "2000", "--quick"],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=stderr,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    try:

        def worker_running() -> bool:
            assert bench.poll() is None, stderr_path.read_text()[-3000:]
            return any("streams.cli worker" in line for line in marked(marker).values())

        wait_for(worker_running, 150, "the bench's worker")
        running = marked(marker, log_dir_of(stderr_path.read_text()))
        assert len(running) == 4, running  # the bench, broker, Redis and worker
        bench.send_signal(signal.SIGTERM)
        bench.wait(60)
        time.sleep(0.5)  # the children are reaped by the bench before it exits
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
        left = kill_marked(marker, stderr_path.read_text())
    err = stderr_path.read_text()
    assert bench.returncode == 130, err[-3000:]
    assert "bench STOPPED: interrupted; every process it started is stopped" in err
    assert "Traceback" not in err, err[-3000:]
    assert left == {}, left


def test_a_soak_that_fails_stops_every_process() -> None:
    code, stderr, left = run_marked(
        "bench.soak", "--minutes", "0.05", "--workers", "1", "--kill-every", "0",
        "--rate", "10", "--converge-timeout", "0",
    )  # fmt: skip
    assert code == 1, stderr[-3000:]
    assert "soak FAILED: the ledger holds" in stderr, stderr[-3000:]
    assert "Traceback" not in stderr
    assert left == {}, left


def test_sigterm_during_the_scale_standby_phase_stops_both_workers(tmp_path: Path) -> None:
    marker, env = marked_env()
    stderr_path = tmp_path / "scale.err"
    with stderr_path.open("wb") as stderr:
        bench = subprocess.Popen(
            [sys.executable, "-m", "bench.scale", "--events", "2000"],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=stderr,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    try:

        def two_workers_running() -> bool:
            err = stderr_path.read_text()
            assert bench.poll() is None, err[-3000:]
            if "starting a second worker next to it" not in err:
                return False  # two processes at a restart (one dying) are not the phase
            workers = [line for line in marked(marker).values() if "streams.cli worker" in line]
            return len(workers) == 2  # the owner and the standby

        wait_for(two_workers_running, 200, "the scale bench's standby phase")
        bench.send_signal(signal.SIGTERM)
        bench.wait(60)
        time.sleep(0.5)
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
        left = kill_marked(marker, stderr_path.read_text())
    err = stderr_path.read_text()
    assert "starting a second worker next to it" in err, err[-3000:]
    assert bench.returncode == 130, err[-3000:]
    assert "scale STOPPED: interrupted; every process it started is stopped" in err
    assert "Traceback" not in err, err[-3000:]
    assert left == {}, left
