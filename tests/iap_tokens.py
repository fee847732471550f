"""IAP assertions for tests, made by the local IAP stand-in's signer, and its keys served
like https://www.gstatic.com/iap/verify/public_key."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from django_tasks_fs.emulators.iap.signer import IAPSigner, iap_claims

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


class KeysServer:
    """Serves the keys' certs document on 127.0.0.1."""

    def __init__(self, *keys: IAPKey) -> None:
        document = json.dumps({k.kid: k.signer.public_key_pem for k in keys}).encode()

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
