"""IAP assertions for tests, made by the local IAP stand-in's signer, and their keys
served like https://www.gstatic.com/iap/verify/public_key."""

from __future__ import annotations

from typing import Any

from django_tasks_fs.emulators.iap.signer import IAPSigner, iap_claims
from tests.tokens import CertsServer

AUDIENCE = "/projects/123456789/locations/europe-west1/services/web"


class IAPKey:
    """Signs IAP assertions; ``sign(email, **claims)`` changes or drops (None) claims."""

    def __init__(self, kid: str | None = None) -> None:
        self.signer = IAPSigner(key_id=kid)
        self.kid = self.signer.key_id

    def sign(self, email: str | None = "alice@example.com", **changes: Any) -> str:
        claims = iap_claims(email or "nobody@example.com", AUDIENCE)
        claims.update(changes, email=email)
        return self.signer.sign({k: v for k, v in claims.items() if v is not None})


def keys_server(*keys: IAPKey) -> CertsServer:
    """The keys' ``{kid: PEM}`` document, served like IAP's public_key URL."""
    return CertsServer(
        {k.kid: k.signer.public_key_pem for k in keys}, path="/iap/verify/public_key"
    )
