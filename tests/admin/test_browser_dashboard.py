"""The task dashboard in a real headless Chromium (Selenium), served on 127.0.0.1.

Executions in every state (READY, RUNNING, RUNNING with an expired lease, SUCCESSFUL,
FAILED, PENDING dispatch for longer than the sweeper's grace); the numbers the browser
shows are checked, then the auto-refresh and its pause.
``UPDATE_ADMIN_SCREENSHOTS=1`` rewrites docs/images/admin-dashboard.png.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from django_tasks_fs.admin.executions import TaskExecutionAdmin
from tests.conftest import REPO_ROOT, wait_until

from .browser import navigate
from .test_dashboard import seed_every_state

pytestmark = pytest.mark.browser


def figures(browser: Any, queue: str) -> dict[str, str]:
    """The figures shown in backend 'default''s row of ``queue``, by name."""
    from selenium.webdriver.common.by import By

    row = browser.find_element(
        By.CSS_SELECTOR, f"#backend-default tr.tfs-queue[data-queue='{queue}']"
    )
    cells = row.find_elements(By.CSS_SELECTOR, "td[data-figure]")
    return {c.get_attribute("data-figure"): c.text for c in cells}


def ready_shown(browser: Any) -> str | None:
    """The ready figure of queue 'default', None while the page reloads."""
    from selenium.common.exceptions import WebDriverException

    try:
        return figures(browser, "default")["ready"]
    except WebDriverException:
        return None


def pause_by_its_button(browser: Any) -> bool:
    """Click Pause, retried while an auto-refresh replaces the page; True once paused.

    A click can land on a page being unloaded, or on the new page before its script has
    attached the button's handler; the pause is read back from where the handler keeps it.
    """
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By

    read = "return window.sessionStorage.getItem('tfs-dashboard-paused')"
    try:
        if browser.execute_script(read) == "1":
            return True
        browser.find_element(By.ID, "tfs-pause").click()
        return bool(browser.execute_script(read) == "1")
    except WebDriverException:
        return False


@pytest.mark.django_db(transaction=True)
def test_the_dashboard_in_a_real_browser(
    browser: Any,
    live_server: Any,
    tasks_project: str,
    add_execution: Callable[..., Any],
    django_user_model: Any,
    monkeypatch: Any,
    tmp_path: Path,
) -> None:
    from selenium.webdriver.common.by import By

    monkeypatch.setattr(TaskExecutionAdmin, "dashboard_refresh_seconds", 2)
    django_user_model.objects.create_superuser("admin", "admin@example.com", "secret-pw")
    seeded = seed_every_state(add_execution)
    base = live_server.url

    browser.get(f"{base}/admin/")
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys("secret-pw")
    navigate(browser, browser.find_element(By.CSS_SELECTOR, "input[type=submit]"))
    # Paused first, so that no refresh happens while the figures are read.
    browser.execute_script("window.sessionStorage.setItem('tfs-dashboard-paused', '1')")
    navigate(browser, browser.find_element(By.LINK_TEXT, "Task dashboard"))
    assert browser.find_element(By.ID, "tfs-refresh-state").text == "Auto-refresh paused."
    navigate(
        browser, browser.find_element(By.CSS_SELECTOR, ".tfs-backends a[href='?backend=default']")
    )
    assert [
        s.get_attribute("data-backend")
        for s in browser.find_elements(By.CSS_SELECTOR, "section.tfs-backend")
    ] == ["default"]

    default = figures(browser, "default")
    assert default["oldest"].startswith("5 min ")  # 'oldest ready', due 5 minutes ago
    assert {k: v for k, v in default.items() if k != "oldest"} == {
        "ready": "2",
        "running": "2",  # one of them stuck
        "finished 1 h": "5",
        "failed 1 h": "1",
        "failure rate 1 h": "20.0%",
        "finished 24 h": "6",
        "failed 24 h": "1",
        "failure rate 24 h": "16.7%",
    }
    emails = figures(browser, "emails")
    assert (emails["ready"], emails["running"], emails["finished 24 h"]) == ("3", "0", "1")
    assert (emails["failure rate 1 h"], emails["failure rate 24 h"]) == ("-", "100.0%")

    rows = browser.find_elements(By.CSS_SELECTOR, "#backend-default tr.tfs-duration")
    shown = {
        (r.get_attribute("data-task"), r.get_attribute("data-queue")): [
            c.text for c in r.find_elements(By.CSS_SELECTOR, "td[data-figure]")
        ]
        for r in rows
    }
    assert shown == {
        ("tests.tasks.noop", "default"): ["6", "2.000 s", "10.000 s", "10.000 s"],
        ("tests.tasks.failing", "default"): ["1", "0.500 s", "0.500 s", "0.500 s"],
        ("tests.tasks.noop", "emails"): ["1", "0.250 s", "0.250 s", "0.250 s"],
    }
    assert browser.find_element(By.CSS_SELECTOR, "#backend-default .tfs-stuck-count").text == "1"
    assert browser.find_element(By.CSS_SELECTOR, "#backend-default .tfs-pending-count").text == "1"
    stuck = browser.find_element(By.CSS_SELECTOR, "#backend-default table[data-kind=stuck]")
    assert seeded["stuck"].id in stuck.text
    pending = browser.find_element(By.CSS_SELECTOR, "#backend-default table[data-kind=pending]")
    assert seeded["pending"].id in pending.text
    assert seeded["pending fresh"].id not in pending.text

    update = os.environ.get("UPDATE_ADMIN_SCREENSHOTS") == "1"
    folder = REPO_ROOT / "docs" / "images" if update else tmp_path
    browser.set_window_size(1400, 1350)
    browser.save_screenshot(str(folder / "admin-dashboard.png"))

    # Resumed, the page refreshes itself and shows a new execution.
    browser.find_element(By.ID, "tfs-pause").click()
    assert browser.find_element(By.ID, "tfs-refresh-state").text.startswith("Refreshes every 2 s")
    add_execution()
    wait_until(lambda: ready_shown(browser) == "3", timeout=30)
    # Paused again: it stays paused across a reload.
    wait_until(lambda: pause_by_its_button(browser), timeout=30)
    browser.refresh()
    assert browser.find_element(By.ID, "tfs-refresh-state").text == "Auto-refresh paused."
    assert browser.find_element(By.ID, "tfs-pause").text == "Resume"

    # Its link from a stuck execution leads to the execution's page.
    navigate(browser, browser.find_element(By.LINK_TEXT, seeded["stuck"].id))
    assert seeded["stuck"].id in browser.find_element(By.ID, "content").text
