"""Where the stand-in listens and the paths it answers itself (no ``cryptography`` needed,
so that the commands can work out their defaults without it)."""

from __future__ import annotations

from urllib.parse import urlsplit

from ..service import LOCALHOST

DEFAULT_PORT = 8080
DEFAULT_UPSTREAM = "127.0.0.1:8000"
CERTS_PATH = "/_iap/public_key"
LOGIN_PATH = "/_iap/login"
LOGOUT_PATH = "/_iap/clear_login_cookie"
#: IAP's own sign-out URL is any path with ``?gcp-iap-mode=CLEAR_LOGIN_COOKIE``.
MODE_PARAMETER = "gcp-iap-mode"
LOGOUT_MODE = "CLEAR_LOGIN_COOKIE"
OWN_PATHS = frozenset({CERTS_PATH, LOGIN_PATH, LOGOUT_PATH})
LOCAL_HOSTS = frozenset({LOCALHOST, "localhost", "::1"})


def base_url(host: str, port: int) -> str:
    """Where a browser on this machine reaches a proxy listening on ``host:port``."""
    return f"http://{LOCALHOST if host in ('0.0.0.0', '', '::') else host}:{port}"


def certs_port(url: str) -> int | None:
    """The port of ``url`` when it is a stand-in's certs URL on this machine, else None."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return None
    if parts.scheme != "http" or parts.hostname not in LOCAL_HOSTS or parts.path != CERTS_PATH:
        return None
    return port


def local_path(value: str) -> str | None:
    """``value`` when it is a path on this site, else None (no open redirect)."""
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        return None
    parts = urlsplit(value)
    return None if parts.scheme or parts.netloc else value
