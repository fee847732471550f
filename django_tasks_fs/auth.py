"""Verify the Google OIDC ID tokens Cloud Tasks and Cloud Scheduler send.

Checked before the request body is read: signature (against Google's certificates,
cached), expiry, issuer, audience, service account email and ``email_verified``.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from google.auth import exceptions as auth_exceptions
from google.auth import jwt

logger = logging.getLogger(__name__)

GOOGLE_ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})
#: A Google ID token is about 1 KB; anything much larger is not one.
MAX_TOKEN_BYTES = 8 * 1024
CLOCK_SKEW_SECONDS = 10
DEFAULT_CERTS_TTL = 3600.0
#: Unknown key ids trigger a refetch, at most this often (keys rotate; attackers invent kids).
REFETCH_INTERVAL = 60.0
_BEARER = re.compile(r"^Bearer ([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*)$")


class AuthenticationFailed(Exception):
    """The request is not from the expected Google service account."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status  #: 401 (no or bad token) or 403 (valid token, wrong caller)


@dataclass(frozen=True, slots=True)
class Expectation:
    """Who may call: tokens for ``audience`` signed by ``certs_url``'s keys, for ``email``."""

    audience: str
    email: str
    certs_url: str


class CertCache:
    """Public keys by URL, kept for the document's max-age; an unknown key id refetches."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._certs: dict[
            str, tuple[float, float, dict[str, str]]
        ] = {}  # url -> (expires, fetched, certs)

    def get(self, url: str, *, kid: str | None) -> dict[str, str]:
        now = time.monotonic()
        with self._lock:
            expires, fetched, certs = self._certs.get(url, (0.0, 0.0, {}))
            stale = now >= expires or (
                kid is not None and kid not in certs and now - fetched > REFETCH_INTERVAL
            )
            if not stale:
                return certs
        certs, ttl = _fetch(url)
        with self._lock:
            self._certs[url] = (now + ttl, now, certs)
        return certs


def _fetch(url: str) -> tuple[dict[str, str], float]:
    with urllib.request.urlopen(url, timeout=10) as response:
        body = response.read(1024 * 1024)
        cache_control = response.headers.get("Cache-Control", "")
    match = re.search(r"max-age=(\d+)", cache_control)
    ttl = float(match.group(1)) if match else DEFAULT_CERTS_TTL
    certs = json.loads(body)
    if not isinstance(certs, dict):
        raise ValueError(f"Unexpected certificates document at {url}")
    return {str(k): str(v) for k, v in certs.items()}, ttl


#: Shared by the OIDC endpoints and the IAP admin authentication.
certificate_cache = CertCache()


def bearer_token(header: str | None) -> str:
    """The JWT of an ``Authorization: Bearer`` header; raise AuthenticationFailed(401)."""
    if not header:
        raise AuthenticationFailed(401, "Missing Authorization header.")
    if len(header) > MAX_TOKEN_BYTES:
        raise AuthenticationFailed(401, "Authorization header too large.")
    match = _BEARER.match(header.strip())
    if match is None:
        raise AuthenticationFailed(401, "Authorization must be 'Bearer <Google ID token>'.")
    return match.group(1)


def verify(header: str | None, expectations: Sequence[Expectation]) -> list[Expectation]:
    """Verify the token; return the expectations it satisfies (at least one), or raise."""
    token = bearer_token(header)
    try:
        unverified_header: dict[str, Any] = jwt.decode_header(token)  # type: ignore[no-untyped-call]
    except (ValueError, RecursionError, auth_exceptions.GoogleAuthError):
        # RecursionError: a header or payload of deeply nested JSON ("[[[[...").
        raise AuthenticationFailed(401, "Malformed token.") from None
    if unverified_header.get("alg") != "RS256":
        raise AuthenticationFailed(401, "Only RS256-signed Google ID tokens are accepted.")
    kid = unverified_header.get("kid")
    failures: list[str] = []
    wrong_caller: list[str] = []
    matched: list[Expectation] = []
    for certs_url, audience in sorted({(e.certs_url, e.audience) for e in expectations}):
        try:
            certs = certificate_cache.get(certs_url, kid=kid if isinstance(kid, str) else None)
            claims: dict[str, Any] = jwt.decode(  # type: ignore[no-untyped-call]
                token, certs=certs, audience=audience, clock_skew_in_seconds=CLOCK_SKEW_SECONDS
            )
        except (ValueError, TypeError, RecursionError, auth_exceptions.GoogleAuthError) as exc:
            # TypeError: claims of the wrong type (e.g. a string "exp") in a signed token.
            failures.append(str(exc))
            continue
        except OSError as exc:
            logger.error("could not fetch token certificates from %s: %s", certs_url, exc)
            raise AuthenticationFailed(401, "Token certificates unavailable.") from None
        if claims.get("iss") not in GOOGLE_ISSUERS:
            failures.append(f"issuer {claims.get('iss')!r} is not Google")
            continue
        for expectation in expectations:
            if (expectation.certs_url, expectation.audience) != (certs_url, audience):
                continue
            if claims.get("email") != expectation.email:
                wrong_caller.append(
                    f"email {claims.get('email')!r} is not the expected service account"
                )
            elif claims.get("email_verified") is not True:
                wrong_caller.append("email is not verified")
            else:
                matched.append(expectation)
    if matched:
        return matched
    if wrong_caller:
        raise AuthenticationFailed(403, "; ".join(wrong_caller))
    logger.info("token rejected: %s", "; ".join(failures))
    raise AuthenticationFailed(401, "Invalid token.")
