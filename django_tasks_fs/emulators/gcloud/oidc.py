"""The emulator's OIDC identity: one RSA key, its certificate, and Google-shaped ID tokens.

Tokens look like the ones Cloud Tasks and Cloud Scheduler attach for an ``oidc_token``
target; the certificate is served at ``/oauth2/v1/certs`` in the format of
https://www.googleapis.com/oauth2/v1/certs, so ``google.oauth2.id_token.verify_token``
accepts them when pointed at the emulator's certs URL.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import EXTRA_HINT, MissingExtra

try:  # first: google.auth.crypt needs it too, in the versions that require it
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID
except ImportError as exc:  # not a dependency of the library itself: see pyproject.toml
    raise MissingExtra(
        f"The Google Cloud emulator signs its OIDC tokens with the 'cryptography' package, "
        f"which is not installed ({exc}). Install the emulators extra: {EXTRA_HINT}"
    ) from exc

from google.auth import crypt, jwt

ISSUER = "https://accounts.google.com"
TOKEN_LIFETIME = 3600  #: seconds, as Google's ID tokens
KEY_SIZE = 2048


def service_account_id(email: str) -> str:
    """A stable 21-digit numeric id for a service account, like Google's unique ids."""
    digest = int.from_bytes(hashlib.sha256(email.encode()).digest()[:9], "big")
    return "1" + str(digest).rjust(20, "0")[-20:]


class TokenIssuer:
    """Sign ID tokens with a key generated at start and publish its certificate."""

    def __init__(self) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
        public_der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        #: Google's key ids are 40 hex digits.
        self.key_id = hashlib.sha1(public_der, usedforsecurity=False).hexdigest()
        private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        signer_type: Any = crypt.RSASigner  # google-auth leaves from_string untyped
        self._signer = signer_type.from_string(private_pem, key_id=self.key_id)
        self.certificate_pem = _self_signed_certificate(key).decode()

    def certs(self) -> dict[str, str]:
        """The ``/oauth2/v1/certs`` document: key id -> PEM certificate."""
        return {self.key_id: self.certificate_pem}

    def id_token(self, *, email: str, audience: str, now: float | None = None) -> str:
        """An ID token for service account ``email``, addressed to ``audience``."""
        issued = int(time.time() if now is None else now)
        account_id = service_account_id(email)
        claims = {
            "iss": ISSUER,
            "aud": audience,
            "azp": account_id,
            "sub": account_id,
            "email": email,
            "email_verified": True,
            "iat": issued,
            "exp": issued + TOKEN_LIFETIME,
        }
        encode: Any = jwt.encode  # untyped in google-auth
        token: bytes = encode(self._signer, claims)
        return token.decode()


def _self_signed_certificate(key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "emulator.gcloud.local")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)
