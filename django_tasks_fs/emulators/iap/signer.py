"""IAP's side of the signed header: an ES256 key, its public keys in the format of
https://www.gstatic.com/iap/verify/public_key, and tokens with the claims IAP sends.

Tokens are made with google-auth's own ES256 signer and ``jwt.encode``, so they are
exactly what ``google.auth.jwt.decode`` expects.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Mapping
from typing import Any

from ..errors import EXTRA_HINT, MissingExtra

try:  # first: google.auth.crypt.es256 needs it too
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
except ImportError as exc:  # not a dependency of the library itself: see pyproject.toml
    raise MissingExtra(
        f"The local IAP stand-in signs its tokens with the 'cryptography' package, which "
        f"is not installed ({exc}). Install the emulators extra: {EXTRA_HINT}"
    ) from exc

from google.auth import jwt
from google.auth.crypt import es256

from ...iap.config import IAP_ISSUER as ISSUER

#: Seconds, as IAP's own assertions.
DEFAULT_LIFETIME = 600
#: IAP prefixes user ids and emails in its headers and ``sub`` with the identity source.
ACCOUNTS_PREFIX = "accounts.google.com:"
ASSERTION_HEADER = "X-Goog-IAP-JWT-Assertion"
EMAIL_HEADER = "X-Goog-Authenticated-User-Email"
ID_HEADER = "X-Goog-Authenticated-User-Id"


def user_id(email: str) -> str:
    """A stable 21-digit numeric id for ``email``, like Google's user ids."""
    digest = int.from_bytes(hashlib.sha256(email.lower().encode()).digest()[:9], "big")
    return "1" + str(digest).rjust(20, "0")[-20:]


def iap_claims(
    email: str,
    audience: str,
    *,
    hd: str | None = None,
    now: float | None = None,
    lifetime: int = DEFAULT_LIFETIME,
) -> dict[str, Any]:
    """The claims of IAP's ``X-Goog-IAP-JWT-Assertion`` for user ``email``.

    ``audience`` is ``/projects/NUMBER/apps/PROJECT_ID`` (App Engine) or
    ``/projects/NUMBER/global/backendServices/ID``; ``hd`` (the Workspace domain) is
    left out when None, as IAP does for consumer accounts.
    """
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": audience,
        "sub": ACCOUNTS_PREFIX + user_id(email),
        "email": email,
        "iat": issued,
        "exp": issued + lifetime,
        "google": {"access_levels": []},
    }
    if hd is not None:
        claims["hd"] = hd
    return claims


class IAPSigner:
    """Sign IAP assertions with an EC P-256 key generated at start."""

    def __init__(self, *, key_id: str | None = None) -> None:
        """``key_id``: claim another key's id (tests of forged signatures)."""
        key = ec.generate_private_key(ec.SECP256R1())
        public_der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        #: Short, like IAP's own key ids (``"f9R3yg"``).
        self.key_id = key_id or (
            base64.urlsafe_b64encode(hashlib.sha256(public_der).digest()[:6]).decode()
        )
        self.public_key_pem = (
            key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        signer_type: Any = es256.ES256Signer  # google-auth leaves from_string untyped
        self._signer = signer_type.from_string(private_pem, key_id=self.key_id)

    def public_keys(self) -> dict[str, str]:
        """The certs document: key id -> PEM public key."""
        return {self.key_id: self.public_key_pem}

    def sign(self, claims: Mapping[str, Any]) -> str:
        """An ES256 JWT of ``claims``, with header ``{"alg", "typ", "kid"}``."""
        encode: Any = jwt.encode  # untyped in google-auth
        # alg given explicitly: older google-auth versions guess it from the signer class.
        token: bytes = encode(self._signer, dict(claims), header={"alg": "ES256"})
        return token.decode()


def iap_headers(
    signer: IAPSigner, email: str, audience: str, *, hd: str | None = None
) -> list[tuple[str, str]]:
    """What IAP adds to a request of ``email``: a fresh assertion and two plain headers."""
    return [
        (ASSERTION_HEADER, signer.sign(iap_claims(email, audience, hd=hd))),
        (EMAIL_HEADER, ACCOUNTS_PREFIX + email),
        (ID_HEADER, ACCOUNTS_PREFIX + user_id(email)),
    ]


__all__ = [
    "ASSERTION_HEADER",
    "DEFAULT_LIFETIME",
    "EMAIL_HEADER",
    "ID_HEADER",
    "ISSUER",
    "IAPSigner",
    "iap_claims",
    "iap_headers",
    "user_id",
]
