"""Send one HTTP request to a task or job target, as Cloud Tasks and Cloud Scheduler do.

Redirects are not followed and proxies are ignored (targets are local). ``timeout``
applies to connecting and to each read, which is how a dispatch deadline shows up for
a handler that simply takes too long.
"""

from __future__ import annotations

import http.client
import logging
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

#: Response bodies are read (so the connection ends cleanly) but not kept beyond this.
MAX_RESPONSE_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """The outcome of one attempt."""

    status: int | None  #: HTTP status, None when no response came back
    error: str = ""  #: why there was no response
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def send(
    *, method: str, url: str, headers: dict[str, str], body: bytes, timeout: float
) -> Delivery:
    """Make the request; never raises for network or HTTP errors."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return Delivery(status=None, error=f"unsupported URL {url!r}")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request(method, path, body=body or None, headers=headers)
        response = connection.getresponse()
        response.read(MAX_RESPONSE_BYTES)
        status = response.status
    except TimeoutError as exc:
        logger.info("delivery timed out url=%s timeout=%s", url, timeout)
        return Delivery(status=None, error=f"deadline exceeded: {exc}", timed_out=True)
    except (OSError, http.client.HTTPException) as exc:
        logger.info("delivery failed url=%s error=%r", url, exc)
        return Delivery(status=None, error=repr(exc))
    finally:
        connection.close()
    logger.info("delivered url=%s status=%s", url, status)
    return Delivery(status=status)
