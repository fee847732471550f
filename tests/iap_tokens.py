"""IAP-style assertions for tests: an ES256 key, its public-key endpoint, and forgeries."""

from __future__ import annotations

import json
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.auth import jwt
from google.auth.crypt import es256

from django_tasks_fs.iap.config import IAP_ISSUER

AUDIENCE = "/projects/123456789/locations/europe-west1/services/web"


class IAPKey:
    """An ES256 key that signs assertions as IAP does, with ``kid``."""

    def __init__(self, kid: str = "iap-test-key") -> None:
        self.kid = kid
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.signer = es256.ES256Signer.from_string(pem, key_id=kid)
        self.public_pem = (
            key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def sign(self, email: str = "alice@example.com", **changes: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": IAP_ISSUER,
            "aud": AUDIENCE,
            "sub": f"accounts.google.com:{zlib.crc32(str(email).encode())}",
            "email": email,
            "iat": now,
            "exp": now + 600,
            "google": {"access_levels": []},
        }
        claims.update(changes)
        token: bytes = jwt.encode(self.signer, {k: v for k, v in claims.items() if v is not None})
        return token.decode()


class KeysServer:
    """Serves ``{kid: PEM}`` like https://www.gstatic.com/iap/verify/public_key."""

    def __init__(self, *keys: IAPKey) -> None:
        document = json.dumps({k.kid: k.public_pem for k in keys}).encode()

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
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/iap/verify/public_key"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
