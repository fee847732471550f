"""Verify the ``X-Goog-IAP-JWT-Assertion`` header IAP adds to every request it admits.

ES256 only, signed by a key of ``CERTS_URL`` (Google's IAP keys in production), issued
by ``https://cloud.google.com/iap`` for one of the configured audiences, not expired.
The unsigned ``X-Goog-Authenticated-User-*`` headers are never trusted: they are what
an attacker who bypasses IAP would forge.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from google.auth import exceptions as auth_exceptions
from google.auth import jwt

from ..auth import CLOCK_SKEW_SECONDS, MAX_TOKEN_BYTES, certificate_cache
from .config import IAP_ISSUER, IAPConfig

logger = logging.getLogger(__name__)

HEADER = "HTTP_X_GOOG_IAP_JWT_ASSERTION"  #: request.META key of X-Goog-IAP-JWT-Assertion


class AssertionRefused(Exception):
    """No IAP assertion, or one that does not verify; the message says which."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who IAP admitted: the verified claims we use."""

    email: str
    subject: str
    hosted_domain: str | None  #: the ``hd`` claim: the user's Google Workspace domain


def _decode(token: str, certs: dict[str, str], audience: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(  # type: ignore[no-untyped-call]
            token, certs=certs, audience=audience, clock_skew_in_seconds=CLOCK_SKEW_SECONDS
        )
    except ImportError as exc:  # ES256 needs cryptography
        raise AssertionRefused(
            f"cannot verify ES256 signatures ({exc}); install 'django-tasks-fs[iap]'"
        ) from None
    except (ValueError, TypeError, RecursionError, auth_exceptions.GoogleAuthError) as exc:
        raise AssertionRefused(str(exc)) from None
    return claims


def verify_assertion(token: str | None, config: IAPConfig) -> Identity:
    """The identity in a valid assertion; raise AssertionRefused for anything else."""
    if not token:
        raise AssertionRefused(
            "no X-Goog-IAP-JWT-Assertion header: the request did not come through IAP"
        )
    if len(token) > MAX_TOKEN_BYTES:
        raise AssertionRefused("the IAP assertion is too large")
    try:
        header: dict[str, Any] = jwt.decode_header(token)  # type: ignore[no-untyped-call]
    except (ValueError, RecursionError, auth_exceptions.GoogleAuthError):
        raise AssertionRefused("the IAP assertion is malformed") from None
    if not isinstance(header, dict) or header.get("alg") != "ES256":
        raise AssertionRefused("the IAP assertion is not signed with ES256")
    kid = header.get("kid")
    try:
        certs = certificate_cache.get(config.certs_url, kid=kid if isinstance(kid, str) else None)
    except (OSError, ValueError) as exc:
        logger.error("could not fetch the IAP public keys from %s: %s", config.certs_url, exc)
        raise AssertionRefused(
            f"the IAP public keys at {config.certs_url} are unavailable"
        ) from None
    failures = []
    for audience in config.audiences:
        try:
            claims = _decode(token, certs, audience)
        except AssertionRefused as exc:
            failures.append(str(exc))
            continue
        return _identity(claims)
    raise AssertionRefused("; ".join(dict.fromkeys(failures)) or "no AUDIENCE is configured")


def _identity(claims: dict[str, Any]) -> Identity:
    if claims.get("iss") != IAP_ISSUER:
        raise AssertionRefused(f"issuer {claims.get('iss')!r} is not {IAP_ISSUER}")
    email, subject, hd = claims.get("email"), claims.get("sub"), claims.get("hd")
    if not isinstance(email, str) or "@" not in email:
        raise AssertionRefused("the IAP assertion carries no email")
    if not isinstance(subject, str) or not subject:
        raise AssertionRefused("the IAP assertion carries no subject")
    return Identity(
        email=email.lower(),
        subject=subject,
        hosted_domain=hd.lower() if isinstance(hd, str) and hd else None,
    )
