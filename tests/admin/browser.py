"""A real headless Chromium driven by Selenium (marker ``browser``: Debian's ``chromium``
and ``chromium-driver``)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
]


def navigate(browser: Any, element: Any) -> None:
    """Click something that loads a new page, and wait until that page has loaded.

    The old page is marked with a window property rather than watched through an element
    handle: while a page is being replaced, chromedriver may answer a question about an old
    element with a generic error ("Node with given id does not belong to the document")
    instead of the stale-element one Selenium's ``staleness_of`` expects.
    """
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    browser.execute_script("window.tfsOldPage = true")
    element.click()
    WebDriverWait(browser, 30, ignored_exceptions=(WebDriverException,)).until(
        lambda d: d.execute_script(
            "return !window.tfsOldPage && document.readyState === 'complete'"
        )
    )


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Chromium with a profile of its own (offered to tests by conftest.py)."""
    # The browser marker checked that both are on PATH.
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium
    assert driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in [*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    chrome = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    chrome.implicitly_wait(5)
    yield chrome
    chrome.quit()
