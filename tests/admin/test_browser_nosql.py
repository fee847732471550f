"""The admin of an app with no SQL database (``DATABASES = {}``), in a real Chromium,
signed in by IAP as on Google Cloud: the browser talks to the local IAP stand-in, which
signs every request and forwards it to ``runserver`` in a subprocess.

Refusals are checked on the same server, over real HTTP, past the stand-in: no header,
an expired or forged assertion, another audience or issuer, a user with no grant.
"""

from __future__ import annotations

import os
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.tasks import task_backends

from django_tasks_fs.emulators.iap.proxy import IAPProxy
from django_tasks_fs.emulators.iap.signer import IAPSigner, iap_claims
from django_tasks_fs.emulators.service import free_port
from tests.background import Background
from tests.conftest import REPO_ROOT, wait_until
from tests.factories import python_path
from tests.settings_nosql import IAP_AUDIENCE

from .browser import navigate
from .conftest import failed, running

pytestmark = [pytest.mark.browser, pytest.mark.firestore]  # runserver in a subprocess

DETAIL = "/admin/django_tasks_fs/taskexecution/default/{}/"


def accepts_connections(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def stand_in(tasks_project: str, tmp_path: Path) -> Iterator[tuple[IAPProxy, int]]:
    """runserver (settings ``tests.settings_nosql``) behind the IAP stand-in."""
    http_port, proxy_port = free_port(), free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings_nosql",
        "TEST_FIRESTORE_PROJECT": tasks_project,
        "TEST_IAP_CERTS_URL": f"http://127.0.0.1:{proxy_port}/_iap/public_key",
        "PYTHONPATH": python_path(),
    }
    server = Background(
        [sys.executable, "-m", "django", "runserver", "--noreload", "--insecure",
         f"127.0.0.1:{http_port}"],
        tmp_path / "runserver.txt",
        cwd=REPO_ROOT,
        env=env,
    )  # fmt: skip
    try:
        wait_until(lambda: accepts_connections(http_port) or server.process.poll() is not None, timeout=60)  # fmt: skip
        assert server.process.poll() is None, server.output
        with IAPProxy(
            "127.0.0.1",
            proxy_port,
            f"127.0.0.1:{http_port}",
            email="alice@example.com",
            audience=IAP_AUDIENCE,
        ) as proxy:
            yield proxy, http_port
    finally:
        server.kill_leftovers()
        assert "OperationalError" not in server.output
        assert "ImproperlyConfigured" not in server.output, server.output


def status(url: str, header: str | None) -> tuple[int, str]:
    request = urllib.request.Request(url, method="GET")
    if header is not None:
        request.add_header("X-Goog-IAP-JWT-Assertion", header)
    request.add_header("X-Goog-Authenticated-User-Email", "accounts.google.com:alice@example.com")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()


def test_the_admin_with_no_sql_database_through_iap(
    browser: Any,
    stand_in: tuple[IAPProxy, int],
    add_execution: Callable[..., Any],
) -> None:
    from selenium.webdriver.common.by import By

    proxy, http_port = stand_in
    broken = add_execution(**failed())
    busy = add_execution(**running(task_path="tests.tasks.record_and_sleep"))
    store = task_backends["default"].executions  # type: ignore[attr-defined]
    base = proxy.url

    # Signed in by IAP: no login form; the index has no "Recent actions" (a SQL table).
    browser.get(f"{base}/admin/")
    assert "alice@example.com" in browser.find_element(By.ID, "user-tools").text.lower()
    assert "Recent actions" not in browser.page_source
    navigate(browser, browser.find_element(By.LINK_TEXT, "Task executions"))
    rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert {r.find_element(By.CSS_SELECTOR, "th a").text for r in rows} == {broken.id, busy.id}

    # Detail, then retry the failed execution: the message links to the copy.
    navigate(browser, browser.find_element(By.LINK_TEXT, broken.id))
    assert "ValueError" in browser.find_element(By.CSS_SELECTOR, "pre.tfs-traceback").text
    navigate(browser, browser.find_element(By.CSS_SELECTOR, "a.tfs-action-retry"))
    navigate(browser, browser.find_element(By.ID, "tfs-confirm"))
    message = browser.find_element(By.CSS_SELECTOR, "ul.messagelist li.success")
    copy_id = message.find_element(By.TAG_NAME, "a").text
    assert store.get(copy_id).task_path == broken.task_path

    # Cancel the running one.
    browser.get(base + DETAIL.format(busy.id))
    navigate(browser, browser.find_element(By.CSS_SELECTOR, "a.tfs-action-cancel"))
    navigate(browser, browser.find_element(By.ID, "tfs-confirm"))
    message_text = browser.find_element(By.CSS_SELECTOR, "ul.messagelist li.success").text
    assert message_text == f"Execution {busy.id} is running: it was asked to stop."
    assert store.get(busy.id).cancelled_at is not None

    # A schedule: added, then edited.
    browser.get(f"{base}/admin/django_tasks_fs/scheduledtask/add/")
    for name, value in {"name": "nightly", "task_path": "tests.tasks.echo", "schedule": "0 3 * * *"}.items():  # fmt: skip
        browser.find_element(By.NAME, name).send_keys(value)
    navigate(browser, browser.find_element(By.NAME, "_save"))
    assert "was added" in browser.find_element(By.CSS_SELECTOR, "ul.messagelist li.success").text
    navigate(browser, browser.find_element(By.LINK_TEXT, "nightly"))
    schedule = browser.find_element(By.NAME, "schedule")
    schedule.clear()
    schedule.send_keys("30 6 * * 1-5")
    navigate(browser, browser.find_element(By.NAME, "_save"))
    assert "Every Monday to Friday at 06:30" in browser.find_element(By.ID, "result_list").text
    schedules = task_backends["default"].schedules  # type: ignore[attr-defined]
    assert schedules.get("nightly").schedule == "30 6 * * 1-5"

    # Another Google account, with a view grant only: no action buttons, POST refused.
    browser.get(f"{base}/_iap/login?email=viewer@example.com&next=" + DETAIL.format(broken.id))
    assert "viewer@example.com" in browser.find_element(By.ID, "user-tools").text.lower()
    assert browser.find_elements(By.CSS_SELECTOR, "a.tfs-action-retry") == []
    # And one with no grant at all: 403, naming the account.
    browser.get(f"{base}/_iap/login?email=mallory@example.com&next=/admin/")
    assert "mallory@example.com is signed in through Identity-Aware Proxy but has no grant" in (
        browser.find_element(By.ID, "content").text
    )

    # Past the stand-in, straight to the server: every forgery is refused.
    direct = f"http://127.0.0.1:{http_port}/admin/django_tasks_fs/taskexecution/"
    forger = IAPSigner(key_id=proxy.signer.key_id)
    alice = iap_claims("alice@example.com", IAP_AUDIENCE)
    forgeries = {
        "no header": None,
        "expired": proxy.signer.sign(
            iap_claims("alice@example.com", IAP_AUDIENCE, now=time.time() - 1300)
        ),
        "wrong audience": proxy.signer.sign({**alice, "aud": "/projects/1/apps/other"}),
        "wrong issuer": proxy.signer.sign({**alice, "iss": "https://accounts.google.com"}),
        "forged signature": forger.sign(alice),
    }
    refused = {name: status(direct, header) for name, header in forgeries.items()}
    assert {name: code for name, (code, _) in refused.items()} == dict.fromkeys(refused, 401)
    no_grant = status(direct, proxy.signer.sign(iap_claims("mallory@example.com", IAP_AUDIENCE)))
    assert no_grant[0] == 403
    valid = status(direct, proxy.signer.sign(iap_claims("alice@example.com", IAP_AUDIENCE)))
    assert valid[0] == 200
    assert store.get(broken.id).status == "FAILED"  # untouched by all of the above
