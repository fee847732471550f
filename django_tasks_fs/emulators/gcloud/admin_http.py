"""The emulator's small HTTP side: OIDC certificates, ID tokens and fault injection.

``GET  /oauth2/v1/certs``                    key id -> PEM certificate, like Google's
``GET  /emulator/v1/token?email=E&audience=A`` a signed ID token (to call the app by hand)
``GET  /emulator/v1/faults``                 armed faults
``POST /emulator/v1/faults``                 arm one: ``{"method": "CreateTask",
                                             "code": "UNAVAILABLE", "times": 1, "after": false}``
``DELETE /emulator/v1/faults``               disarm all
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, override
from urllib.parse import parse_qs, urlsplit

from .faults import FaultInjector
from .oidc import TokenIssuer

logger = logging.getLogger(__name__)

CERTS_PATH = "/oauth2/v1/certs"
FAULTS_PATH = "/emulator/v1/faults"
TOKEN_PATH = "/emulator/v1/token"
#: Short, so a restarted emulator's new key is picked up quickly by verifiers that cache.
CERTS_MAX_AGE = 60


class AdminServer:
    """A threaded HTTP server on ``host``; ``port`` 0 picks a free one."""

    def __init__(self, *, host: str, port: int, issuer: TokenIssuer, faults: FaultInjector) -> None:
        handler = type("Handler", (_Handler,), {"issuer": issuer, "faults": faults})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="emulator-admin-http",
            daemon=True,
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    issuer: TokenIssuer
    faults: FaultInjector

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == CERTS_PATH:
            self._json(200, self.issuer.certs(), cache=f"public, max-age={CERTS_MAX_AGE}")
        elif url.path == TOKEN_PATH:
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if not query.get("email") or not query.get("audience"):
                self._json(400, {"error": "email and audience are required"})
                return
            token = self.issuer.id_token(email=query["email"], audience=query["audience"])
            self._json(200, {"id_token": token})
        elif url.path == FAULTS_PATH:
            faults = [
                {"method": f.method, "code": f.code.name, "times": f.times, "after": f.after}
                for f in self.faults.pending()
            ]
            self._json(200, {"faults": faults})
        elif url.path == "/":
            self._json(200, {"status": "ok"})
        else:
            self._json(404, {"error": f"no such path {url.path!r}"})

    def do_POST(self) -> None:
        if urlsplit(self.path).path != FAULTS_PATH:
            self._json(404, {"error": "not found"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            spec = json.loads(self.rfile.read(length) or b"{}")
            self.faults.fail_next(
                str(spec["method"]),
                str(spec["code"]),
                times=int(spec.get("times", 1)),
                after=bool(spec.get("after", False)),
                message=str(spec.get("message", "injected fault")),
            )
        except (KeyError, ValueError, TypeError) as exc:
            self._json(400, {"error": f"bad fault: {exc!r}"})
            return
        self._json(201, {"armed": spec})

    def do_DELETE(self) -> None:
        if urlsplit(self.path).path != FAULTS_PATH:
            self._json(404, {"error": "not found"})
            return
        self.faults.clear()
        self._json(200, {"faults": []})

    def _json(self, status: int, body: Any, *, cache: str = "no-store") -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", cache)
        self.end_headers()
        self.wfile.write(data)

    @override
    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("admin http " + format, *args)
