"""Google group membership for ``group:`` grants, from the Cloud Identity Groups API.

An IAP assertion names the user, not their groups, so a ``group:`` grant asks Cloud
Identity (``groups:lookup`` then ``memberships:checkTransitiveMembership``) with the
app's own credentials. Answers are cached per (group, user) for ``CACHE_SECONDS``; a
failed look-up (no permission, network) denies, is logged with the fix, and is cached
for ``FAILURE_CACHE_SECONDS`` so a broken setup does not add seconds to every page.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.parse
from typing import Any

from .config import GOOGLE_GROUPS_API

logger = logging.getLogger(__name__)

SCOPE = "https://www.googleapis.com/auth/cloud-identity.groups.readonly"
CACHE_SECONDS = 300.0
FAILURE_CACHE_SECONDS = 30.0
TIMEOUT_SECONDS = 5.0


class GroupLookupFailed(Exception):
    pass


class GroupDirectory:
    """Answers "is this user in that group?" through one Cloud Identity endpoint."""

    def __init__(self, api: str) -> None:
        self.api = api
        self._lock = threading.Lock()
        self._answers: dict[tuple[str, str], tuple[float, bool]] = {}
        self._names: dict[str, str] = {}
        self._session: Any = None

    def is_member(self, group: str, email: str) -> bool:
        key = (group, email)
        now = time.monotonic()
        with self._lock:
            expires, answer = self._answers.get(key, (0.0, False))
        if now < expires:
            return answer
        try:
            answer, ttl = self._check(group, email), CACHE_SECONDS
        except GroupLookupFailed as exc:
            logger.warning(
                "could not check that %s is in group %s (%s); denying. The app's service "
                "account needs to read group memberships (Cloud Identity Groups API "
                "enabled, and the Groups Reader admin role or group-level access).",
                email,
                group,
                exc,
            )
            answer, ttl = False, FAILURE_CACHE_SECONDS
        with self._lock:
            self._answers[key] = (now + ttl, answer)
        return answer

    def _check(self, group: str, email: str) -> bool:
        name = self._names.get(group)
        if name is None:
            found = self._get("/v1/groups:lookup", {"groupKey.id": group})
            name = found.get("name")
            if not isinstance(name, str) or not name.startswith("groups/"):
                raise GroupLookupFailed(f"no group {group!r}")
            self._names[group] = name
        answer = self._get(
            f"/v1/{name}/memberships:checkTransitiveMembership",
            {"query": f"member_key_id == '{email}'"},
        )
        return answer.get("hasMembership") is True

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        url = f"{self.api}{path}?{urllib.parse.urlencode(params)}"
        try:
            response = self._authorized().get(url, timeout=TIMEOUT_SECONDS)
        except Exception as exc:  # transport errors of requests / google-auth
            raise GroupLookupFailed(f"{type(exc).__name__}: {exc}") from None
        if response.status_code != 200:
            raise GroupLookupFailed(f"{url} answered {response.status_code}")
        try:
            body = json.loads(response.content)
        except ValueError:
            raise GroupLookupFailed(f"{url} answered non-JSON") from None
        return body if isinstance(body, dict) else {}

    def _authorized(self) -> Any:
        if self._session is None:
            import google.auth
            from google.auth.credentials import AnonymousCredentials
            from google.auth.transport.requests import AuthorizedSession

            if self.api == GOOGLE_GROUPS_API:
                try:
                    credentials, _ = google.auth.default(scopes=[SCOPE])
                except Exception as exc:
                    raise GroupLookupFailed(f"no Google credentials: {exc}") from None
            else:  # a local stand-in of the API: no credentials to send
                credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
            self._session = AuthorizedSession(credentials)  # type: ignore[no-untyped-call]
        return self._session


_directories: dict[str, GroupDirectory] = {}
_directories_lock = threading.Lock()


def directory(api: str) -> GroupDirectory:
    """One directory (and cache) per API endpoint, for the process."""
    with _directories_lock:
        return _directories.setdefault(api, GroupDirectory(api))
