"""A real HTTP server on 127.0.0.1 serving the Django test project, in a thread."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
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


def deliver(url: str, token: str, execution_id: str, *, timeout: float = 120) -> tuple[int, str]:
    """POST an execution to ``execute/`` as Cloud Tasks does; return (status, body)."""
    request = urllib.request.Request(
        url,
        data=f"execution_id={execution_id}&backend=cloud".encode(),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/x-www-form-urlencoded",
            "X-CloudTasks-TaskName": execution_id,
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()
