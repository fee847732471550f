"""The admin signed in by Identity-Aware Proxy: no SQL table is touched.

None of these tests has database access (pytest-django refuses any query), so a page
that reached for ``auth``, ``sessions`` or ``admin``'s LogEntry tables would fail here.
Hostile requests are refused with 401/403 and leave the execution as it was.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.tasks import task_backends
from django.test import Client

from django_tasks_fs import auth
from django_tasks_fs.auth import certificate_cache
from django_tasks_fs.iap import groups
from django_tasks_fs.store import TaskExecution
from tests.iap_tokens import AUDIENCE, IAPKey, keys_server
from tests.settings_nosql import MIDDLEWARE
from tests.tokens import CertsServer

from .conftest import ADMIN, failed

SITE = "/admin/"
EXECUTIONS = ADMIN + "taskexecution/"
SCHEDULES = ADMIN + "scheduledtask/"
Add = Callable[..., TaskExecution]


@pytest.fixture(scope="module")
def iap_key() -> IAPKey:
    return IAPKey()


@pytest.fixture(scope="module")
def iap_keys(iap_key: IAPKey) -> Iterator[CertsServer]:
    server = keys_server(iap_key)
    yield server
    server.close()


class Directory:
    """Cloud Identity's two calls, as documented: groups:lookup and
    memberships:checkTransitiveMembership (no emulator exists for this API)."""

    def __init__(self, members: dict[str, set[str]]) -> None:
        self.members = members
        self.calls: list[str] = []
        self.fail = False
        directory = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                directory.calls.append(self.path)
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                if directory.fail:
                    self._answer(403, {"error": {"code": 403}})
                elif url.path == "/v1/groups:lookup":
                    group = query["groupKey.id"]
                    if group in directory.members:
                        self._answer(200, {"name": f"groups/{group.split('@')[0]}"})
                    else:
                        self._answer(404, {"error": {"code": 404}})
                else:
                    name = url.path.split("/")[3]
                    email = query["query"].split("'")[1]
                    group = next(g for g in directory.members if g.startswith(name + "@"))
                    self._answer(200, {"hasMembership": email in directory.members[group]})

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps(body).encode())

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def directory() -> Iterator[Directory]:
    server = Directory({"oncall@example.com": {"carol@example.com"}})
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()
    groups._directories.clear()


@pytest.fixture
def iap(
    settings: Any, iap_keys: CertsServer, directory: Directory, tasks_project: str
) -> dict[str, Any]:
    settings.MIDDLEWARE = MIDDLEWARE
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    settings.TASKS_FS_IAP = {
        "AUDIENCE": AUDIENCE,
        "CERTS_URL": iap_keys.url,
        "GROUPS_API": directory.url,
        "GRANTS": {
            "alice@example.com": ["all"],
            "viewer@example.com": ["view"],
            "canceller@example.com": ["cancel"],
            "retrier@example.com": ["retry"],
            "domain:example.org": ["view"],
            "group:oncall@example.com": ["cancel"],
        },
    }
    return settings.TASKS_FS_IAP  # type: ignore[no-any-return]


def as_user(key: IAPKey, email: str = "alice@example.com", **claims: Any) -> Client:
    """A browser behind IAP: every request carries the assertion, CSRF is enforced."""
    return Client(enforce_csrf_checks=True, HTTP_X_GOOG_IAP_JWT_ASSERTION=key.sign(email, **claims))


def status_of(execution: TaskExecution) -> str:
    return str(task_backends["default"].executions.get(execution.id).status)  # type: ignore[attr-defined]


def post_with_csrf(client: Client, url: str, data: dict[str, Any] | None = None) -> Any:
    page = client.get(url)
    assert page.status_code == 200, page.status_code
    return client.post(
        url, {"csrfmiddlewaretoken": str(page.context["csrf_token"]), **(data or {})}
    )


def detail(execution: TaskExecution) -> str:
    return f"{EXECUTIONS}default/{execution.id}/"


def test_a_granted_user_lists_reads_cancels_and_retries(
    iap: dict[str, Any], iap_key: IAPKey, add_execution: Add
) -> None:
    waiting = add_execution()
    finished = add_execution(**failed())
    client = as_user(iap_key)
    index = client.get(SITE)
    assert index.status_code == 200
    assert b"alice@example.com" in index.content
    assert client.get(ADMIN).status_code == 200
    assert b"Recent actions" not in index.content  # the admin log is a SQL table
    listing = client.get(EXECUTIONS)
    assert listing.status_code == 200
    assert waiting.id in listing.content.decode()
    assert finished.id in listing.content.decode()
    assert client.get(detail(finished)).status_code == 200

    assert post_with_csrf(client, detail(waiting) + "cancel/").status_code == 302
    assert status_of(waiting) == "FAILED"
    retried = post_with_csrf(client, detail(finished) + "retry/")
    assert retried.status_code == 302
    assert client.get(SCHEDULES).status_code == 200


@pytest.mark.parametrize(
    ("name", "make_header"),
    [
        ("no header", lambda key: None),
        ("expired", lambda key: key.sign(iat=int(time.time()) - 1300, exp=int(time.time()) - 700)),
        ("wrong audience", lambda key: key.sign(aud="/projects/1/apps/other")),
        ("wrong issuer", lambda key: key.sign(iss="https://accounts.google.com")),
        ("forged signature", lambda key: IAPKey(kid=key.kid).sign()),
        ("unknown key", lambda key: IAPKey(kid="someone-else").sign()),
        ("no email", lambda key: key.sign(email=None)),
        ("garbage", lambda key: "not.a.jwt"),
    ],
)
def test_a_request_without_a_valid_assertion_is_refused_and_changes_nothing(
    iap: dict[str, Any],
    iap_key: IAPKey,
    add_execution: Add,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    make_header: Callable[[IAPKey], str | None],
) -> None:
    monkeypatch.setattr("django_tasks_fs.auth.REFETCH_INTERVAL", 3600.0)  # no refetch
    execution = add_execution()
    header = make_header(iap_key)
    extra = {} if header is None else {"HTTP_X_GOOG_IAP_JWT_ASSERTION": header}
    # What an attacker who bypassed IAP could add: the unsigned identity headers.
    client = Client(HTTP_X_GOOG_AUTHENTICATED_USER_EMAIL="accounts.google.com:alice@example.com", **extra)  # fmt: skip
    for url in (SITE, ADMIN, EXECUTIONS, detail(execution), SCHEDULES, SITE + "login/"):
        page = client.get(url)
        assert page.status_code == 401, (name, url, page.status_code)
        assert b"Identity-Aware Proxy" in page.content
    assert client.post(detail(execution) + "cancel/").status_code == 401
    assert client.post(EXECUTIONS, {"action": "delete", "backend": "default",
                                    "_selected_action": [execution.id], "confirm": "yes"}).status_code == 401  # fmt: skip
    assert status_of(execution) == "READY"
    assert task_backends["default"].executions.get(execution.id) is not None  # type: ignore[attr-defined]


def test_a_google_account_without_a_grant_gets_403(
    iap: dict[str, Any], iap_key: IAPKey, add_execution: Add
) -> None:
    execution = add_execution()
    client = as_user(iap_key, "mallory@example.com")
    for url in (ADMIN, EXECUTIONS, detail(execution), SITE + "login/"):
        page = client.get(url)
        assert page.status_code == 403, url
        assert b"mallory@example.com" in page.content
    assert client.post(detail(execution) + "cancel/").status_code == 403
    assert status_of(execution) == "READY"


def test_each_grant_allows_its_action_only(
    iap: dict[str, Any], iap_key: IAPKey, add_execution: Add
) -> None:
    viewer = as_user(iap_key, "viewer@example.com")
    execution = add_execution()
    assert viewer.get(detail(execution)).status_code == 200
    assert viewer.get(detail(execution) + "cancel/").status_code == 403
    assert viewer.get(SCHEDULES + "add/").status_code == 403

    retrier = as_user(iap_key, "retrier@example.com")
    assert retrier.get(detail(execution) + "cancel/").status_code == 403
    assert status_of(execution) == "READY"

    canceller = as_user(iap_key, "canceller@example.com")
    assert post_with_csrf(canceller, detail(execution) + "cancel/").status_code == 302
    assert status_of(execution) == "FAILED"
    assert canceller.get(detail(execution) + "retry/").status_code == 403
    assert canceller.get(detail(execution) + "delete/").status_code == 403
    assert post_with_csrf(retrier, detail(execution) + "retry/").status_code == 302


def test_csrf_still_guards_every_state_change(
    iap: dict[str, Any], iap_key: IAPKey, add_execution: Add
) -> None:
    execution = add_execution()
    client = as_user(iap_key)
    assert client.post(detail(execution) + "cancel/").status_code == 403  # no token
    assert status_of(execution) == "READY"


def test_domain_grants_follow_the_hd_claim_not_the_email(
    iap: dict[str, Any], iap_key: IAPKey
) -> None:
    assert as_user(iap_key, "dan@example.org", hd="example.org").get(EXECUTIONS).status_code == 200
    # A consumer Google account may carry any address: without hd, no domain grant.
    assert as_user(iap_key, "eve@example.org").get(EXECUTIONS).status_code == 403


def test_group_grants_ask_cloud_identity_and_cache_the_answer(
    iap: dict[str, Any], iap_key: IAPKey, directory: Directory, add_execution: Add
) -> None:
    execution = add_execution()
    member = as_user(iap_key, "carol@example.com")
    assert member.get(detail(execution) + "cancel/").status_code == 200
    assert member.get(EXECUTIONS).status_code == 200
    lookups = len(directory.calls)
    assert lookups == 2  # groups:lookup, then checkTransitiveMembership, once
    assert as_user(iap_key, "bob@example.com").get(EXECUTIONS).status_code == 403


def test_a_failing_group_lookup_denies_and_is_logged(
    iap: dict[str, Any],
    iap_key: IAPKey,
    directory: Directory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    directory.fail = True
    assert as_user(iap_key, "carol@example.com").get(EXECUTIONS).status_code == 403
    assert "Cloud Identity Groups API" in caplog.text


def test_no_login_form_no_password_and_sign_out_goes_to_iap(
    iap: dict[str, Any], iap_key: IAPKey
) -> None:
    client = as_user(iap_key)
    assert client.get(SITE + "login/").status_code == 302
    assert client.get(SITE + "password_change/").status_code == 404
    index = client.get(SITE)
    assert b"password_change" not in index.content
    signed_out = client.post(
        SITE + "logout/", {"csrfmiddlewaretoken": str(index.context["csrf_token"])}
    )
    assert signed_out.status_code == 302
    assert signed_out["Location"] == "/?gcp-iap-mode=CLEAR_LOGIN_COOKIE"


def test_keys_are_fetched_once_and_cached(
    iap: dict[str, Any], iap_key: IAPKey, iap_keys: CertsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(certificate_cache, "_certs", {})
    fetched: list[str] = []
    original = auth._fetch

    def counting(url: str) -> Any:
        fetched.append(url)
        return original(url)

    monkeypatch.setattr(auth, "_fetch", counting)
    client = as_user(iap_key)
    for _ in range(3):
        assert client.get(ADMIN).status_code == 200
    assert fetched == [iap_keys.url]
