"""The reverse proxy that plays IAP in front of a developer's Django server.

Like IAP it removes every ``X-Goog-*`` header the client sent (a browser cannot forge
an identity) and adds a freshly signed ``X-Goog-IAP-JWT-Assertion`` and the two
``X-Goog-Authenticated-User-*`` headers. Requests and responses pass otherwise
unchanged: the Host the browser sent (so Django's CSRF origin check sees the proxy's
address), every method and body, every response header (several ``Set-Cookie``
included), and redirects are handed to the browser, not followed.
"""

from __future__ import annotations

import errno
import http.client
import io
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self, override
from urllib.parse import parse_qs, urlsplit

from ..errors import EmulatorFailed
from ..service import LOCALHOST, Service, parse_host_port, port_in_use
from . import pages
from .identity import Identity, split_cookie_header
from .signer import IAPSigner, iap_headers
from .urls import (
    CERTS_PATH,
    DEFAULT_UPSTREAM,
    LOGIN_PATH,
    LOGOUT_MODE,
    MODE_PARAMETER,
    OWN_PATHS,
    base_url,
    local_path,
)

logger = logging.getLogger(__name__)

#: Seconds to connect to the upstream: a stopped runserver answers 502 at once, not a hang.
CONNECT_TIMEOUT = 5.0
#: Seconds to wait for each read from the upstream (a slow view under the debugger).
READ_TIMEOUT = 300.0
CHUNK_SIZE = 64 * 1024
MAX_LINE = 65536
#: Headers about one connection, never forwarded (RFC 9110 7.6.1), plus Expect:
#: this side already answered "100 Continue".
HOP_BY_HOP = frozenset(
    {
        "connection",
        "expect",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
#: Set by the proxy itself; a client's values are replaced (X-Forwarded-For is appended to).
FORWARDED = frozenset(
    {"content-length", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto"}
)


class IAPProxy(Service):
    """IAP in front of the Django server at ``upstream``, listening on
    ``listen_host:listen_port`` (port 0: a free one), signing for ``email`` by default.

    Raises PortInUse when the port is taken, ValueError for a bad email, hd or upstream.
    """

    def __init__(
        self,
        listen_host: str = LOCALHOST,
        listen_port: int = 0,
        upstream: str = DEFAULT_UPSTREAM,
        *,
        email: str,
        audience: str,
        hd: str | None = None,
        signer: IAPSigner | None = None,
    ) -> None:
        self.upstream = parse_host_port(upstream)
        self.identity = Identity.parse(email, hd)  #: whom requests are signed for by default
        self.audience = audience
        self.signer = signer or IAPSigner()
        handler = type("Handler", (_Handler,), {"proxy": self})
        try:
            self._server = ThreadingHTTPServer((listen_host, listen_port), handler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise port_in_use(
                    listen_host, listen_port, exc, what="local IAP stand-in", option="--port"
                ) from None
            raise EmulatorFailed(
                f"The local IAP stand-in cannot listen on {listen_host}:{listen_port}: {exc}."
            ) from None
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Where to open the site, e.g. ``http://127.0.0.1:8080``."""
        return base_url(self.host, self.port)

    @property
    def certs_url(self) -> str:
        """The ``CERTS_URL`` of ``TASKS_FS_IAP`` for this proxy."""
        return self.url + CERTS_PATH

    @property
    def upstream_address(self) -> str:
        return "{}:{}".format(*self.upstream)

    def start(self) -> Self:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="iap-stand-in",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the port."""
        if self._thread is not None:  # shutdown() waits forever for a loop never started
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def wait(self) -> None:
        """Block until the server stops (signals still arrive between the checks)."""
        while self._thread is not None and self._thread.is_alive():
            time.sleep(0.2)


class _Handler(BaseHTTPRequestHandler):
    proxy: IAPProxy
    protocol_version = "HTTP/1.1"  # keep-alive with the browser
    server_version = "django-tasks-fs-iap-stand-in"
    timeout = READ_TIMEOUT  # an idle keep-alive connection frees its thread eventually

    def do_GET(self) -> None:
        try:
            body = self._read_body()
        except ValueError as exc:
            self.close_connection = True
            self._reply(pages.text(400, f"Bad request body: {exc}"))
            return
        target = self._target()
        path, _, query = target.partition("?")
        if path in OWN_PATHS or LOGOUT_MODE in parse_qs(query).get(MODE_PARAMETER, []):
            self._reply(self._own(path, query))
        else:
            self._forward(target, body)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET  # noqa: N815

    def _target(self) -> str:
        if self.path.startswith("/"):
            return self.path
        parts = urlsplit(self.path)  # absolute-form, as sent to a forward proxy
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return _read_chunked(self.rfile)
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        if not length.strip().isdigit():
            raise ValueError(f"Content-Length {length!r} is not a number")
        return self.rfile.read(int(length))

    def _own(self, path: str, query: str) -> pages.Reply:
        if self.command not in ("GET", "HEAD"):
            return pages.text(405, f"{path} answers GET only.", headers=[("Allow", "GET, HEAD")])
        if path == CERTS_PATH:
            return pages.certs(self.proxy.signer)
        if path == LOGIN_PATH:
            return self._login({k: v[0] for k, v in parse_qs(query).items()})
        return pages.signed_out(self.proxy.identity)

    def _login(self, params: dict[str, str]) -> pages.Reply:
        if not params.get("email"):
            return pages.login_form(self._identity())
        next_path = local_path(params.get("next", "/"))
        if next_path is None:
            return pages.text(400, f"next must be a path on this site, not {params['next']!r}.")
        try:
            identity = Identity.parse(params["email"], params.get("hd") or None)
        except ValueError as exc:
            return pages.text(400, str(exc))
        return pages.signed_in(identity, next_path)

    def _identity(self) -> Identity:
        for header in self.headers.get_all("Cookie", []):
            value, _ = split_cookie_header(header)
            chosen = Identity.from_cookie(value) if value else None
            if chosen is not None:
                return chosen
        return self.proxy.identity

    def _upstream_headers(self, body: bytes) -> list[tuple[str, str]]:
        connection = {
            token.strip().lower()
            for value in self.headers.get_all("Connection", [])
            for token in value.split(",")
        }
        headers = []
        for name, value in self.headers.items():
            lower = name.lower()
            if lower in HOP_BY_HOP or lower in connection or lower in FORWARDED:
                continue
            if lower.startswith("x-goog-"):  # only IAP may say who the user is
                continue
            if lower == "cookie":
                value = split_cookie_header(value)[1]
                if not value:
                    continue
            headers.append((name, value))
        if "Host" not in self.headers:  # an HTTP/1.0 client
            headers.append(("Host", f"{self.proxy.host}:{self.proxy.port}"))
        if "Content-Length" in self.headers or "Transfer-Encoding" in self.headers:
            headers.append(("Content-Length", str(len(body))))
        client = self.client_address[0]
        earlier = self.headers.get("X-Forwarded-For")
        headers += [
            ("X-Forwarded-For", f"{earlier}, {client}" if earlier else client),
            ("X-Forwarded-Proto", "http"),
            ("X-Forwarded-Host", self.headers.get("Host") or f"{self.proxy.host}"),
        ]
        identity = self._identity()
        return headers + iap_headers(
            self.proxy.signer, identity.email, self.proxy.audience, hd=identity.hd
        )

    def _forward(self, target: str, body: bytes) -> None:
        host, port = self.proxy.upstream
        upstream = http.client.HTTPConnection(host, port, timeout=CONNECT_TIMEOUT)
        try:
            try:
                upstream.connect()
            except OSError as exc:
                self._reply(pages.upstream_unreachable(self.proxy.upstream_address, exc))
                return
            if upstream.sock is not None:
                upstream.sock.settimeout(READ_TIMEOUT)
            try:
                upstream.putrequest(self.command, target, skip_host=True, skip_accept_encoding=True)
                for name, value in self._upstream_headers(body):
                    upstream.putheader(name, value)
                upstream.endheaders(body or None)
                response = upstream.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                self._reply(pages.upstream_failed(self.proxy.upstream_address, exc))
                return
            self._relay(response)
        finally:
            upstream.close()

    def _relay(self, response: http.client.HTTPResponse) -> None:
        self.log_request(response.status)
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        bodiless = self.command == "HEAD" or response.status in (204, 304)
        if not bodiless and response.getheader("Content-Length") is None:
            # The upstream streams (chunked): end the body by closing, as HTTP/1.0 did.
            self.send_header("Connection", "close")
        self.end_headers()
        if bodiless:
            return
        try:
            while chunk := response.read(CHUNK_SIZE):
                self.wfile.write(chunk)
        except OSError as exc:  # either side went away mid-body: nothing left to tell
            logger.debug("iap stand-in: body cut short error=%r", exc)
            self.close_connection = True

    def _reply(self, reply: pages.Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("Cache-Control", reply.cache)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    @override
    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("iap stand-in " + format, *args)


def _read_chunked(stream: io.BufferedIOBase) -> bytes:
    """A chunked request body, decoded (the upstream gets it with a Content-Length)."""
    parts: list[bytes] = []
    while True:
        line = stream.readline(MAX_LINE)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise ValueError(f"bad chunk size line {line[:40]!r}") from None
        if size == 0:
            while stream.readline(MAX_LINE) not in (b"\r\n", b"\n", b""):
                pass  # trailers: dropped
            return b"".join(parts)
        parts.append(stream.read(size))
        stream.readline(MAX_LINE)
