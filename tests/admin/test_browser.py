"""The admin in a real headless Chromium (Selenium), served on 127.0.0.1, data in the emulator.

Needs Debian's ``chromium`` and ``chromium-driver`` (marker ``browser``: skipped without
them, failed under ``CI=true``).
``UPDATE_ADMIN_SCREENSHOTS=1`` rewrites the screenshots in docs/images/.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.tasks import task_backends

from tests.conftest import REPO_ROOT, wait_until

from .browser import navigate
from .conftest import failed, running

pytestmark = pytest.mark.browser


@pytest.fixture
def screenshot(tmp_path: Path) -> Callable[[Any, str], None]:
    folder = REPO_ROOT / "docs" / "images"
    update = os.environ.get("UPDATE_ADMIN_SCREENSHOTS") == "1"

    def take(browser: Any, name: str) -> None:
        browser.save_screenshot(str((folder if update else tmp_path) / f"admin-{name}.png"))

    return take


@pytest.mark.django_db(transaction=True)
def test_admin_in_a_real_browser(
    browser: Any,
    live_server: Any,
    tasks_project: str,
    add_execution: Callable[..., Any],
    django_user_model: Any,
    screenshot: Callable[[Any, str], None],
) -> None:
    from selenium.webdriver.common.by import By

    django_user_model.objects.create_superuser("admin", "admin@example.com", "secret-pw")
    for queue in ("default", "emails"):
        add_execution(queue_name=queue, task_path="tests.tasks.echo", args=[queue])
    broken = add_execution(**failed())
    busy = add_execution(**running(task_path="tests.tasks.record_and_sleep"))
    base = live_server.url

    # Log in.
    browser.get(f"{base}/admin/")
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys("secret-pw")
    navigate(browser, browser.find_element(By.CSS_SELECTOR, "input[type=submit]"))
    assert "Task executions" in browser.find_element(By.ID, "content").text

    # The list, then filtered by status.
    navigate(browser, browser.find_element(By.LINK_TEXT, "Task executions"))
    assert len(browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")) == 4
    screenshot(browser, "list")
    navigate(browser, browser.find_element(By.PARTIAL_LINK_TEXT, "FAILED (1)"))
    rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert [r.find_element(By.CSS_SELECTOR, "th a").text for r in rows] == [broken.id]

    # The failed execution, with its traceback shown as text.
    navigate(browser, browser.find_element(By.LINK_TEXT, broken.id))
    traceback = browser.find_element(By.CSS_SELECTOR, "pre.tfs-traceback").text
    assert "ValueError: <script>alert('x')</script>" in traceback
    screenshot(browser, "detail")

    # Cancel the running one: confirmation page, then the message.
    browser.get(f"{base}/admin/django_tasks_fs/taskexecution/default/{busy.id}/")
    navigate(browser, browser.find_element(By.CSS_SELECTOR, "a.tfs-action-cancel"))
    assert "Cancel 1 of 1 selected task execution?" in browser.page_source
    navigate(browser, browser.find_element(By.ID, "tfs-confirm"))
    message = browser.find_element(By.CSS_SELECTOR, "ul.messagelist li.success").text
    assert message == f"Execution {busy.id} is running: it was asked to stop."
    store = task_backends["default"].executions  # type: ignore[attr-defined]
    wait_until(lambda: store.get(busy.id).cancelled_at is not None)

    # A scheduled task: a validation error first, then saved.
    browser.get(f"{base}/admin/django_tasks_fs/scheduledtask/add/")
    fields = {"name": "nightly-report", "task_path": "tests.tasks.echo", "schedule": "0 25 * * *"}
    for name, value in fields.items():
        browser.find_element(By.NAME, name).send_keys(value)
    time_zone = browser.find_element(By.NAME, "time_zone")
    time_zone.clear()
    time_zone.send_keys("Europe/Paris")
    navigate(browser, browser.find_element(By.NAME, "_save"))
    error = browser.find_element(By.CSS_SELECTOR, ".field-schedule .errorlist").text
    assert error.startswith("Invalid cron expression '0 25 * * *'")
    screenshot(browser, "schedule-form")
    schedule = browser.find_element(By.NAME, "schedule")
    schedule.clear()
    schedule.send_keys("30 6 * * 1-5")
    navigate(browser, browser.find_element(By.NAME, "_save"))
    message = browser.find_element(By.CSS_SELECTOR, "ul.messagelist li.success").text
    assert message == "The scheduled task 'nightly-report' was added."
    assert "Every Monday to Friday at 06:30" in browser.find_element(By.ID, "result_list").text
    saved = task_backends["default"].schedules.get("nightly-report")  # type: ignore[attr-defined]
    assert saved.time_zone == "Europe/Paris"
