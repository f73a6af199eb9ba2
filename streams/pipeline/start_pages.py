"""/healthz, /readyz and /metrics while a worker gets its local state ready, before Faust
(and so its web server) starts.

A fresh worker fills its empty store from the changelogs first
(streams.pipeline.local_state): on Tansu, which keeps every write, that is millions of
records and minutes (bench.scale, 4,000,000 events: 15 million records, about 150 s).
Without these pages the port would refuse every probe meanwhile, and an orchestrator
would take the worker for dead. They answer from a thread of their own: alive, not
ready with what is being read and how far (every other key of the worker's own /readyz
there too, "not started yet"), and the worker's registry; an event posted meanwhile is
refused with 503 and Retry-After. What waits for the worker's own server
(``revpulse dev``) waits for a page only it serves (``/openapi.json``).
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from streams.errors import StackError
from streams.pipeline.health import NOT_STARTED, READINESS_PARTS

log = logging.getLogger(__name__)

# an event batch posted meanwhile is read, and let go, this much at a time
BODY_CHUNK_BYTES = 64 * 1024


class StartPages:
    """The three pages on ``host:port`` from ``with`` until its end; ``doing`` is what
    /readyz reports the recovery is doing."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.doing = "checking the local table stores against their changelogs"
        try:
            self._server = ThreadingHTTPServer((host, port), self._handler())
        except OSError as error:
            raise StackError(
                f"cannot serve the worker's pages on {host}:{port}: {error}"
            ) from error
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="start-pages", daemon=True
        )

    def __enter__(self) -> StartPages:
        self._thread.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _error: BaseException | None,
        _trace: TracebackType | None,
    ) -> None:
        self._server.shutdown()  # the port is free for Faust's web server once closed
        self._server.server_close()
        self._thread.join()

    def say(self, doing: str) -> None:
        """What the worker is doing now, for /readyz."""
        self.doing = doing

    def readyz(self) -> dict[str, Any]:
        """The same keys as the running worker's /readyz (streams.pipeline.health), so
        that a probe or board reading one finds it now too: the recovery says what is
        being read, every other part NOT_STARTED; not_ready names the recovery only, the
        one part known not to be ready (the others are not checked yet)."""
        return {
            "ready": False,
            "not_ready": ["recovery"],
            "recovery_done": False,
            "owns_ledger": False,
            **dict.fromkeys(READINESS_PARTS, NOT_STARTED),
            "recovery": self.doing,
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        pages = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/healthz":
                    self._send(200, "application/json", json.dumps({"status": "alive"}))
                elif self.path == "/readyz":
                    self._send(503, "application/json", json.dumps(pages.readyz()))
                elif self.path == "/metrics":
                    self._send(200, CONTENT_TYPE_LATEST, generate_latest(pages.registry))
                else:
                    self._send(404, "text/plain", "not found")

            def do_POST(self) -> None:
                """Events sent before the worker's own server is up: refused with a
                reason and a time to come back, never taken and dropped. The batch is
                read first: closing with it unread resets the connection, and a client
                still sending a large one would get a broken pipe, not the answer."""
                self._skip_body()
                body = {"error": f"the worker is starting ({pages.doing}); retry shortly"}
                self._send(503, "application/json", json.dumps(body), retry_after_seconds=5)

            def _skip_body(self) -> None:
                try:
                    left = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    left = 0
                while left > 0 and (chunk := self.rfile.read(min(left, BODY_CHUNK_BYTES))):
                    left -= len(chunk)

            def _send(
                self,
                status: int,
                content_type: str,
                body: str | bytes,
                retry_after_seconds: int | None = None,
            ) -> None:
                data = body.encode() if isinstance(body, str) else body
                self.send_response(status)
                if retry_after_seconds is not None:
                    self.send_header("Retry-After", str(retry_after_seconds))
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("start page: " + format, *args)

        return Handler
