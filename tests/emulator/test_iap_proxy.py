"""The local IAP stand-in between a real HTTP client and a real upstream server: what it
forwards, what it replaces, what it answers itself, and how its commands start and stop."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, override

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from google.auth import jwt

from django_tasks_fs.emulators.errors import PortInUse
from django_tasks_fs.emulators.iap.__main__ import main
from django_tasks_fs.emulators.iap.proxy import IAPProxy
from django_tasks_fs.emulators.iap.signer import IAPSigner, iap_claims, user_id
from django_tasks_fs.emulators.service import free_port
from tests.background import Background

AUDIENCE = "/projects/0/apps/local-dev"
PYTHON = sys.executable
#: A client timeout: a proxy that hangs fails the test instead of blocking it.
TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Seen:
    """One request the upstream got."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        assert len(values) <= 1, (name, values)
        return values[0] if values else None

    def names(self) -> set[str]:
        return {k.lower() for k, _ in self.headers}


class Upstream:
    """A stand-in for runserver: records requests; ``/redirect`` and ``/cookies`` answer
    with a redirect and two cookies, ``/stream`` without a length, everything else
    echoes the body."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                upstream.seen.append(
                    Seen(self.command, self.path, list(self.headers.items()), body)
                )
                self.send_response(302 if self.path == "/redirect" else 200)
                if self.path == "/redirect":
                    self.send_header("Location", "http://elsewhere.example/next?a=1")
                if self.path == "/cookies":
                    self.send_header("Set-Cookie", "sessionid=abc; Path=/; HttpOnly")
                    self.send_header("Set-Cookie", "csrftoken=xyz; Path=/")
                answer = b"echo:" + body
                if self.path == "/stream":  # no length: the body ends when the connection does
                    self.send_header("Connection", "close")
                else:
                    self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer)

            do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET  # noqa: N815

            @override
            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def last(self) -> Seen:
        assert self.seen, "the upstream got no request"
        return self.seen[-1]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.close()


@pytest.fixture
def proxy(upstream: Upstream) -> Iterator[IAPProxy]:
    with IAPProxy(
        "127.0.0.1", 0, upstream.address, email="alice@example.com", audience=AUDIENCE
    ) as running:
        yield running


def request(
    proxy: IAPProxy,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=TIMEOUT)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return Answer(response.status, response.getheaders(), response.read())
    finally:
        connection.close()


def public_keys(proxy: IAPProxy) -> dict[str, str]:
    answer = request(proxy, "GET", "/_iap/public_key")
    assert answer.status == 200
    assert "max-age=300" in (answer.header("Cache-Control") or "")
    keys: dict[str, str] = json.loads(answer.body)
    return keys


def verified_claims(proxy: IAPProxy, seen: Seen) -> dict[str, Any]:
    """The assertion the upstream got, verified as the app does it."""
    token = seen.header("X-Goog-IAP-JWT-Assertion")
    assert token is not None
    decode: Any = jwt.decode  # untyped in google-auth
    claims: dict[str, Any] = decode(token, certs=public_keys(proxy), audience=AUDIENCE)
    return claims


def test_a_request_is_forwarded_with_its_body_query_headers_and_host(
    proxy: IAPProxy, upstream: Upstream
) -> None:
    answer = request(
        proxy,
        "POST",
        "/admin/login/?next=/admin/&x=1",
        body=b"a=1&b=2",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Custom": "kept",
            "Cookie": "sessionid=s1; csrftoken=c1",
            "X-Forwarded-For": "203.0.113.9",
        },
    )
    assert (answer.status, answer.body) == (200, b"echo:a=1&b=2")
    seen = upstream.last()
    assert (seen.method, seen.path, seen.body) == (
        "POST",
        "/admin/login/?next=/admin/&x=1",
        b"a=1&b=2",
    )
    assert seen.header("Content-Type") == "application/x-www-form-urlencoded"
    assert seen.header("X-Custom") == "kept"
    assert seen.header("Cookie") == "sessionid=s1; csrftoken=c1"
    assert seen.header("Host") == f"127.0.0.1:{proxy.port}"  # the browser's, not the upstream's
    assert seen.header("X-Forwarded-Host") == f"127.0.0.1:{proxy.port}"
    assert seen.header("X-Forwarded-Proto") == "http"
    assert seen.header("X-Forwarded-For") == "203.0.113.9, 127.0.0.1"


@pytest.mark.parametrize("method", ["GET", "POST", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_every_method_is_forwarded_and_signed(
    proxy: IAPProxy, upstream: Upstream, method: str
) -> None:
    body = None if method in ("GET", "HEAD", "OPTIONS") else b'{"k": 1}'
    answer = request(proxy, method, "/api/thing", body=body)
    assert answer.status == 200
    assert answer.body == (b"" if method == "HEAD" else b"echo:" + (body or b""))
    seen = upstream.last()
    assert (seen.method, seen.body) == (method, body or b"")
    assert verified_claims(proxy, seen)["email"] == "alice@example.com"


def test_client_sent_goog_headers_are_stripped_and_replaced(
    proxy: IAPProxy, upstream: Upstream
) -> None:
    forged = IAPSigner().sign(iap_claims("mallory@example.com", AUDIENCE))
    request(
        proxy,
        "GET",
        "/admin/",
        headers={
            "X-Goog-IAP-JWT-Assertion": forged,
            "x-goog-foo": "bar",
            "X-Goog-Authenticated-User-Email": "accounts.google.com:mallory@example.com",
        },
    )
    seen = upstream.last()
    assert "x-goog-foo" not in seen.names()
    assert seen.header("X-Goog-IAP-JWT-Assertion") != forged
    assert seen.header("X-Goog-Authenticated-User-Email") == "accounts.google.com:alice@example.com"
    assert seen.header("X-Goog-Authenticated-User-Id") == (
        "accounts.google.com:" + user_id("alice@example.com")
    )
    assert verified_claims(proxy, seen)["email"] == "alice@example.com"


def test_the_assertion_verifies_with_the_served_keys_and_has_iaps_claims(
    upstream: Upstream,
) -> None:
    with IAPProxy(
        "127.0.0.1",
        0,
        upstream.address,
        email="alice@example.com",
        audience=AUDIENCE,
        hd="example.com",
    ) as proxy:
        request(proxy, "GET", "/admin/")
        seen = upstream.last()
        token = seen.header("X-Goog-IAP-JWT-Assertion")
        assert token is not None
        header = jwt.decode_header(token)
        keys = public_keys(proxy)
        assert header == {"alg": "ES256", "typ": "JWT", "kid": header["kid"]}
        assert list(keys) == [header["kid"]]
        assert keys[header["kid"]].startswith("-----BEGIN PUBLIC KEY-----")
        claims = verified_claims(proxy, seen)
        decode: Any = jwt.decode
        with pytest.raises(ValueError, match="audience"):
            decode(token, certs=keys, audience="/projects/1/apps/other")
    assert claims["iss"] == "https://cloud.google.com/iap"
    assert claims["aud"] == AUDIENCE
    assert (claims["email"], claims["hd"]) == ("alice@example.com", "example.com")
    assert claims["sub"] == "accounts.google.com:" + user_id("alice@example.com")
    assert claims["exp"] - claims["iat"] == 600
    assert claims["google"] == {"access_levels": []}


def test_iap_claims_are_relative_to_the_given_time() -> None:
    claims = iap_claims("bob@example.com", AUDIENCE, now=1000.7, lifetime=30)
    assert (claims["iat"], claims["exp"]) == (1000, 1030)
    assert "hd" not in claims
    assert user_id("bob@example.com") == user_id("bob@example.com")
    assert user_id("bob@example.com") != user_id("alice@example.com")
    assert len(user_id("bob@example.com")) == 21


def test_responses_pass_unchanged_with_every_cookie_and_redirects_are_not_followed(
    proxy: IAPProxy, upstream: Upstream
) -> None:
    cookies = request(proxy, "GET", "/cookies")
    assert cookies.all("Set-Cookie") == ["sessionid=abc; Path=/; HttpOnly", "csrftoken=xyz; Path=/"]
    redirect = request(proxy, "GET", "/redirect")
    assert redirect.status == 302
    assert redirect.header("Location") == "http://elsewhere.example/next?a=1"
    assert [s.path for s in upstream.seen] == ["/cookies", "/redirect"]


def test_chunked_bodies_and_unsized_responses_pass_whole(
    proxy: IAPProxy, upstream: Upstream
) -> None:
    pieces = iter([b"part one, ", b"part two"])
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=TIMEOUT)
    try:
        connection.request("POST", "/stream", body=pieces, encode_chunked=True)
        response = connection.getresponse()
        assert (response.status, response.read()) == (200, b"echo:part one, part two")
    finally:
        connection.close()
    seen = upstream.last()
    assert seen.header("Content-Length") == str(len(b"part one, part two"))
    assert seen.header("Transfer-Encoding") is None


def test_login_switches_the_signed_in_user(proxy: IAPProxy, upstream: Upstream) -> None:
    login = request(
        proxy, "GET", "/_iap/login?email=bob%40example.org&hd=example.org&next=/admin/x/"
    )
    assert login.status == 302
    assert login.header("Location") == "/admin/x/"
    cookie = (login.header("Set-Cookie") or "").split(";")[0]
    assert upstream.seen == []  # answered by the proxy itself

    request(proxy, "GET", "/admin/", headers={"Cookie": f"sessionid=s1; {cookie}"})
    seen = upstream.last()
    claims = verified_claims(proxy, seen)
    assert (claims["email"], claims["hd"]) == ("bob@example.org", "example.org")
    assert seen.header("X-Goog-Authenticated-User-Email") == "accounts.google.com:bob@example.org"
    assert seen.header("Cookie") == "sessionid=s1"  # the proxy's own cookie stays with it

    request(proxy, "GET", "/admin/")  # without the cookie: the command line's user
    assert verified_claims(proxy, upstream.last())["email"] == "alice@example.com"


@pytest.mark.parametrize(
    "next_url",
    ["https://evil.example/", "//evil.example/", "/\\evil.example", "http:/evil", "evil"],
)
def test_login_refuses_a_next_outside_the_site(proxy: IAPProxy, next_url: str) -> None:
    answer = request(proxy, "GET", f"/_iap/login?email=bob%40example.org&next={next_url}")
    assert answer.status == 400
    assert answer.header("Set-Cookie") is None
    assert b"next must be a path on this site" in answer.body


def test_login_without_an_email_shows_a_form_and_refuses_a_bad_one(proxy: IAPProxy) -> None:
    form = request(proxy, "GET", "/_iap/login")
    assert form.status == 200
    assert b"<form" in form.body
    assert b"alice@example.com" in form.body
    bad = request(proxy, "GET", "/_iap/login?email=bob%0d%0aX-Evil:1")
    assert bad.status == 400
    assert bad.header("Set-Cookie") is None


@pytest.mark.parametrize("path", ["/_iap/clear_login_cookie", "/?gcp-iap-mode=CLEAR_LOGIN_COOKIE"])
def test_signing_out_clears_the_cookie(proxy: IAPProxy, upstream: Upstream, path: str) -> None:
    answer = request(proxy, "GET", path, headers={"Cookie": "GCP_IAP_STAND_IN_USER=email=b%40c.d"})
    assert answer.status == 200
    cookie = answer.header("Set-Cookie") or ""
    assert cookie.startswith("GCP_IAP_STAND_IN_USER=;")
    assert "Max-Age=0" in cookie
    assert b"signed out of the local IAP stand-in" in answer.body
    assert upstream.seen == []


def test_an_upstream_that_is_down_gives_502_naming_it(upstream: Upstream) -> None:
    nobody = f"127.0.0.1:{free_port()}"
    with IAPProxy("127.0.0.1", 0, nobody, email="a@b.com", audience=AUDIENCE) as proxy:
        answer = request(proxy, "GET", "/admin/")
    assert answer.status == 502
    assert nobody.encode() in answer.body
    assert b"manage.py runserver" in answer.body


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_a_busy_port_is_refused(busy_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(PortInUse, match=f"cannot listen on 127.0.0.1:{busy_port}"):
        IAPProxy("127.0.0.1", busy_port, email="a@b.com", audience=AUDIENCE)
    argv = ["--port", str(busy_port), "--email", "a@b.com", "--audience", AUDIENCE]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{busy_port}" in err
    assert "choose another port with --port" in err


def test_manage_py_takes_the_port_and_audience_from_the_settings(busy_port: int) -> None:
    iap = {
        "AUDIENCE": [AUDIENCE],
        "CERTS_URL": f"http://127.0.0.1:{busy_port}/_iap/public_key",
        "GRANTS": {"domain:example.com": ["view"], "alice@example.com": ["all"]},
    }
    # The busy port proves that the port came from CERTS_URL (and stops the command).
    with override_settings(TASKS_FS_IAP=iap), pytest.raises(CommandError, match=str(busy_port)):
        call_command("tasks_iap_proxy")


def test_manage_py_without_an_audience_says_how_to_give_one() -> None:
    with (
        override_settings(TASKS_FS_IAP={}),
        pytest.raises(CommandError, match=r'--audience .* TASKS_FS_IAP\["AUDIENCE"\]'),
    ):
        call_command("tasks_iap_proxy", email="a@b.com")


def test_the_command_prints_the_settings_and_stops_on_sigterm(
    tmp_path: Path, upstream: Upstream
) -> None:
    command = Background(
        [
            PYTHON,
            "-m",
            "django_tasks_fs.emulators.iap",
            *("--port", "0", "--upstream", upstream.address),
            *("--email", "alice@example.com", "--audience", AUDIENCE, "--hd", "example.com"),
        ],
        tmp_path / "out.txt",
    )
    try:
        command.wait_for("Ctrl-C (or SIGTERM) stops it.", timeout=30)
        output = command.output
        assert "TASKS_FS_IAP = {" in output
        assert f'"AUDIENCE": "{AUDIENCE}",' in output
        certs_line = next(line for line in output.splitlines() if '"CERTS_URL"' in line)
        certs_url = certs_line.split('"')[3]
        assert certs_url.startswith("http://127.0.0.1:")
        assert certs_url.endswith("/_iap/public_key")
        assert command.terminate(timeout=10) == 0
        assert "Stopped." in command.output
    finally:
        command.kill_leftovers()


def test_without_cryptography_the_command_says_which_extra_to_install(tmp_path: Path) -> None:
    # None in sys.modules makes "import cryptography" fail, as on an install without it.
    script = (
        "import sys; sys.modules['cryptography'] = None\n"
        "from django_tasks_fs.emulators.iap.__main__ import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    argv = ["--port", "0", "--email", "a@b.com", "--audience", AUDIENCE]
    command = Background([PYTHON, "-c", script, *argv], tmp_path / "out.txt")
    try:
        assert command.process.wait(timeout=30) == 1
        assert "pip install 'django-tasks-fs[emulators]'" in command.output
        assert "Traceback" not in command.output
    finally:
        command.kill_leftovers()


def test_sigint_stops_it_too(tmp_path: Path) -> None:
    argv = ["--port", "0", "--email", "a@b.com", "--audience", AUDIENCE]
    command = Background(
        [PYTHON, "-m", "django_tasks_fs.emulators.iap", *argv], tmp_path / "out.txt"
    )
    try:
        command.wait_for("stops it.", timeout=30)
        command.process.send_signal(signal.SIGINT)
        assert command.process.wait(timeout=10) == 0
    finally:
        command.kill_leftovers()
