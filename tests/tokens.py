"""Google-shaped ID tokens for tests: valid ones from the emulator's issuer, and forgeries."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import crypt, jwt

from django_tasks_fs.emulators.gcloud.oidc import TokenIssuer

SERVICE_ACCOUNT = "invoker@tests.iam.gserviceaccount.com"
AUDIENCE = "http://testserver"


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": "https://accounts.google.com",
        "aud": AUDIENCE,
        "sub": "1234",
        "email": SERVICE_ACCOUNT,
        "email_verified": True,
        "iat": now,
        "exp": now + 3600,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def sign(issuer: TokenIssuer, **changes: Any) -> str:
    signer: crypt.RSASigner = issuer._signer
    token: bytes = jwt.encode(signer, claims(**changes))
    return token.decode()


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def unsigned(**changes: Any) -> str:
    """``alg: none``: a token with no signature at all."""
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims(**changes))}."


def forged(issuer: TokenIssuer, **changes: Any) -> str:
    """Signed by another key, claiming the real key's id."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    signer = crypt.RSASigner.from_string(pem, key_id=issuer.key_id)
    token: bytes = jwt.encode(signer, claims(**changes))
    return token.decode()


def hs256_with_public_cert(issuer: TokenIssuer, **changes: Any) -> str:
    """Algorithm confusion: HMAC keyed with the public certificate."""
    import hashlib
    import hmac

    header = _b64({"alg": "HS256", "typ": "JWT", "kid": issuer.key_id})
    body = _b64(claims(**changes))
    mac = hmac.new(
        issuer.certificate_pem.encode(), f"{header}.{body}".encode(), hashlib.sha256
    ).digest()
    return f"{header}.{body}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


class CertsServer:
    """Serves public keys on 127.0.0.1 like Google's certs endpoints: an issuer's
    certificates (OIDC), or any ``{kid: PEM}`` document (IAP's keys)."""

    def __init__(
        self, issuer: TokenIssuer | dict[str, str], *, path: str = "/oauth2/v1/certs"
    ) -> None:
        certs = issuer if isinstance(issuer, dict) else issuer.certs()
        document = json.dumps(certs).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "public, max-age=3600")
                self.end_headers()
                self.wfile.write(document)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.path = path
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{self.path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def raw(header: Any, payload: Any, signature: bytes = b"not a signature") -> str:
    """A token from any header and payload (JSON values, or bytes used as they are)."""

    def segment(value: Any) -> str:
        data = value if isinstance(value, bytes) else json.dumps(value).encode()
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return f"{segment(header)}.{segment(payload)}.{segment(signature)}"


_unknown_keys: dict[str | None, crypt.RSASigner] = {}


def unknown_key(kid: str | None, **changes: Any) -> str:
    """Signed by a key no certificate endpoint publishes, with key id ``kid`` (or none)."""
    if kid not in _unknown_keys:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _unknown_keys[kid] = crypt.RSASigner.from_string(pem, key_id=kid)
    token: bytes = jwt.encode(_unknown_keys[kid], claims(**changes))
    return token.decode()
