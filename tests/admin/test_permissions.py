"""Permissions follow Django's: view / change / delete / add, CSRF on every POST."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.tasks import task_backends
from django.test import Client

from django_tasks_fs.scheduling import schedule_task
from tests import tasks

from .conftest import ADMIN, failed
from .test_executions import Add, detail
from .test_schedules import LIST as SCHEDULES
from .test_schedules import VALID

EXECUTIONS = ADMIN + "taskexecution/"
Login = Callable[..., Client]


def test_anonymous_is_sent_to_login(client: Client, tasks_project: str) -> None:
    response = client.get(EXECUTIONS)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_staff_without_permission_sees_and_changes_nothing(
    login: Login, add_execution: Add
) -> None:
    execution = add_execution()
    schedule_task(tasks.noop, "* * * * *", name="nightly")
    staff = login()
    index = staff.get("/admin/").content.decode()
    assert "Task executions" not in index
    assert "Scheduled tasks" not in index
    for url in (EXECUTIONS, detail(execution), detail(execution) + "cancel/", SCHEDULES,
                SCHEDULES + "add/", SCHEDULES + "default/nightly/change/",
                SCHEDULES + "default/nightly/delete/"):  # fmt: skip
        assert staff.get(url).status_code == 403, url
        assert staff.post(url, {"confirm": "yes"}).status_code == 403, url
    assert (
        staff.post(
            SCHEDULES, {"action": "disable", "_selected_action": ["default/nightly"]}
        ).status_code
        == 403
    )
    stored = task_backends["default"].executions.get(execution.id)  # type: ignore[attr-defined]
    assert stored.status == "READY"


def test_view_only_lists_and_reads_but_cannot_act(login: Login, add_execution: Add) -> None:
    execution = add_execution(**failed())
    schedule_task(tasks.noop, "* * * * *", name="nightly")
    viewer = login("view_taskexecution", "view_scheduledtask")
    page = viewer.get(EXECUTIONS)
    assert page.status_code == 200
    assert page.context["actions"] == []
    assert b"ValueError" in viewer.get(detail(execution)).content
    for action in ("cancel", "force_cancel", "retry", "delete"):
        assert viewer.post(detail(execution) + f"{action}/").status_code == 403
    form = {"action": "delete", "backend": "default", "_selected_action": [execution.id],
            "confirm": "yes"}  # fmt: skip
    assert viewer.post(EXECUTIONS, form).status_code == 403
    schedule_page = viewer.get(SCHEDULES + "default/nightly/change/")
    assert schedule_page.status_code == 200
    assert b'value="Save"' not in schedule_page.content
    assert viewer.post(SCHEDULES + "default/nightly/change/", VALID).status_code == 403
    assert viewer.get(SCHEDULES + "add/").status_code == 403
    assert (
        viewer.post(
            SCHEDULES, {"action": "disable", "_selected_action": ["default/nightly"]}
        ).status_code
        == 403
    )


def test_change_permission_allows_actions_but_not_delete(login: Login, add_execution: Add) -> None:
    execution = add_execution(**failed())
    editor = login("view_taskexecution", "change_taskexecution")
    names = [a.name for a in editor.get(EXECUTIONS).context["actions"]]
    assert names == ["cancel", "force_cancel", "retry"]
    assert editor.post(detail(execution) + "retry/").status_code == 302
    assert editor.post(detail(execution) + "delete/").status_code == 403


def test_delete_permission_allows_delete(login: Login, add_execution: Add) -> None:
    execution = add_execution(**failed())
    deleter = login("view_taskexecution", "delete_taskexecution")
    assert [a.name for a in deleter.get(EXECUTIONS).context["actions"]] == ["delete"]
    assert deleter.post(detail(execution) + "delete/").status_code == 302


def test_add_permission_for_schedules(login: Login, tasks_project: str) -> None:
    adder = login("view_scheduledtask", "add_scheduledtask")
    assert adder.get(SCHEDULES + "add/").status_code == 200
    assert adder.post(SCHEDULES + "add/", VALID).status_code == 302
    assert adder.post(SCHEDULES + "default/nightly/change/", VALID).status_code == 403
    assert adder.post(SCHEDULES + "default/nightly/delete/").status_code == 403


@pytest.mark.parametrize("method", ["get"])
def test_state_changes_need_post_and_csrf(
    make_user: Callable[..., object], add_execution: Add, method: str
) -> None:
    execution = add_execution()
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user(superuser=True))  # type: ignore[arg-type]
    page = getattr(client, method)(detail(execution) + "cancel/")
    assert page.status_code == 200  # GET only shows the confirmation
    assert task_backends["default"].executions.get(execution.id).status == "READY"  # type: ignore[attr-defined]
    assert client.post(detail(execution) + "cancel/").status_code == 403  # no token
    assert client.post(EXECUTIONS, {"action": "cancel", "backend": "default",
                                     "_selected_action": [execution.id], "confirm": "yes"}).status_code == 403  # fmt: skip
    assert client.post(SCHEDULES + "add/", VALID).status_code == 403
    token = page.context["csrf_token"]
    done = client.post(detail(execution) + "cancel/", {"csrfmiddlewaretoken": str(token)})
    assert done.status_code == 302
    assert task_backends["default"].executions.get(execution.id).status == "FAILED"  # type: ignore[attr-defined]
