"""The HTTP server of ``run_tasks --health-port``: ``/healthz`` and ``/metrics``.

The standard library's threading server, in a daemon thread: a probe or a scrape never
waits for the loop, and the loop never waits for them. Imported only when the option is
given (worker start-up stays as it was without it).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .health import Verdict

logger = logging.getLogger(__name__)

#: The content type of the Prometheus text exposition format.
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class HealthServer:
    """Serve ``verdict()`` on ``/healthz`` and ``metrics()`` on ``/metrics``."""

    def __init__(
        self,
        port: int,
        *,
        verdict: Callable[[], Verdict],
        metrics: Callable[[], str],
        host: str = "",
    ) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    found = outer.verdict()
                    status = 200 if found.healthy else 503
                    self._send(status, "application/json", json.dumps(found.body))
                elif path == "/metrics":
                    self._send(200, METRICS_TYPE, outer.metrics())
                else:
                    self._send(404, "text/plain", "not found: try /healthz or /metrics\n")

            def _send(self, status: int, content_type: str, text: str) -> None:
                body = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                logger.debug("health server: " + format, *args)

        self.verdict = verdict
        self.metrics = metrics
        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="health-server", daemon=True
        )

    def start(self) -> HealthServer:
        self._thread.start()
        logger.info("health and metrics on port %d (/healthz, /metrics)", self.port)
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
