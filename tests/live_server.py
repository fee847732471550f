"""A real HTTP server on 127.0.0.1 serving the Django test project, in a thread."""

from __future__ import annotations

import threading
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from django.core.wsgi import get_wsgi_application


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 128  # the default backlog (5) resets bursts of deliveries


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class LiveServer:
    """``with LiveServer() as server: server.url`` -> 'http://127.0.0.1:PORT'."""

    def __init__(self) -> None:
        self.httpd = make_server(
            "127.0.0.1",
            0,
            get_wsgi_application(),
            server_class=_Server,
            handler_class=_QuietHandler,
        )
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
