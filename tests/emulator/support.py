"""Helpers for the emulator tests: a recording HTTP target and polling."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar, override

T = TypeVar("T")


def wait_for[T](predicate: Callable[[], T], *, timeout: float = 10.0, what: str = "condition") -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


@dataclass(frozen=True, slots=True)
class Received:
    """One request the target got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  #: time.time() on arrival


class RecordingTarget:
    """An HTTP server that records requests and answers with scripted statuses."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.statuses: list[int] = []  #: answered in order; 200 once empty
        self.lock = threading.Lock()
        target = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with target.lock:
                    target.requests.append(
                        Received(
                            method=self.command,
                            path=self.path,
                            headers=dict(self.headers),
                            body=body,
                            at=time.time(),
                        )
                    )
                    status = target.statuses.pop(0) if target.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_GET = do_PUT = _handle  # noqa: N815

            @override
            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def received(self, count: int = 1, *, timeout: float = 10.0) -> list[Received]:
        """Wait until at least ``count`` requests arrived; return them all."""

        def enough() -> list[Received]:
            with self.lock:
                return list(self.requests) if len(self.requests) >= count else []

        return wait_for(enough, timeout=timeout, what=f"{count} request(s) at the target")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
