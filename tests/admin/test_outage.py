"""The admin while Firestore is unreachable: a 503 page naming the Firestore it tried,
in seconds (the client's own retries would hold the page for 5 minutes, then a 500).

The requests run in the test's thread (the test database is not shared with others),
bounded by pytest-timeout's mark instead."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from emulator.faultproxy import FaultProxy

from .conftest import ADMIN

LIST = ADMIN + "taskexecution/"


def assert_outage_page(response: Any, proxy: FaultProxy, project: str) -> None:
    assert response.status_code == 503
    html = response.content.decode()
    assert "Firestore is unavailable" in html
    assert "Firestore is unreachable (ServiceUnavailable: " in html
    assert f"the Firestore emulator at &#x27;{proxy.host}&#x27; (FIRESTORE_EMULATOR_HOST)" in html
    assert f"project &#x27;{project}&#x27;" in html
    assert "Is the emulator running at" in html


@pytest.mark.timeout(60)
def test_the_execution_list_answers_503_during_an_outage(
    superuser: Client, proxy: FaultProxy, tasks_project: str
) -> None:
    assert superuser.get(LIST).status_code == 200
    proxy.cut()
    response = superuser.get(LIST)  # within the default firestore_timeout_seconds
    assert_outage_page(response, proxy, tasks_project)


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "page",
    [
        LIST + "default/0123456789abcdef0123456789abcdef/",
        ADMIN + "scheduledtask/",
        ADMIN + "scheduledtask/default/nightly/change/",
        LIST + "dashboard/?backend=default",
    ],
)
def test_other_pages_answer_503_during_an_outage(
    superuser: Client, proxy: FaultProxy, tasks_project: str, settings: Any, page: str
) -> None:
    tasks = {**settings.TASKS}
    tasks["default"] = {
        **tasks["default"],
        "OPTIONS": {**tasks["default"]["OPTIONS"], "firestore_timeout_seconds": 2},
    }
    settings.TASKS = tasks
    proxy.cut()
    response = superuser.get(page)
    assert_outage_page(response, proxy, tasks_project)
