"""The scheduled tasks admin: list, form validation, add / change / delete, actions."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.tasks import task_backends
from django.test import Client

from django_tasks_fs.admin.forms import describe_cron
from django_tasks_fs.exceptions import ScheduleNotFound
from django_tasks_fs.scheduling import schedule_task
from tests import tasks

from .conftest import ADMIN
from .test_executions import post, texts

LIST = ADMIN + "scheduledtask/"
VALID = {
    "name": "nightly",
    "task_path": "tests.tasks.echo",
    "schedule": "30 6 * * *",
    "time_zone": "Europe/Paris",
    "backend": "default",
    "queue_name": "",
    "priority": "",
    "args": '[1, "a"]',
    "kwargs": '{"k": [1, 2]}',
    "enabled": "on",
    "description": "",
}


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("* * * * *", "Every minute"),
        ("*/5 * * * *", "Every 5 minutes"),
        ("7 * * * *", "Every hour at minute 7"),
        ("0 */2 * * *", "Every 2 hours at minute 0"),
        ("30 6 * * *", "Every day at 06:30"),
        ("0 9 * * 1-5", "Every Monday to Friday at 09:00"),
        ("0 9 1 * *", "On day 1 of every month at 09:00"),
        ("0 9 25 12 *", "Every December 25 at 09:00"),
        ("0 9 L * *", "Custom schedule"),
    ],
)
def test_describe_cron(expression: str, words: str) -> None:
    assert describe_cron(expression) == words


def test_list_shows_schedule_in_words_next_run_and_last_fired(
    superuser: Client, tasks_project: str
) -> None:
    schedule_task(tasks.noop, "*/5 * * * *", name="every-five", time_zone="Europe/Paris")
    schedule_task(tasks.echo, "0 9 * * 1-5", name="weekdays", enabled=False)
    html = superuser.get(LIST).content.decode()
    assert "every-five" in html
    assert "Every 5 minutes <code>*/5 * * * *</code>" in html
    assert "Europe/Paris" in html
    assert "Every Monday to Friday at 09:00" in html
    response = superuser.get(LIST)
    rows = {r["schedule"].name: r for r in response.context["rows"]}
    assert rows["every-five"]["next_run"] is not None
    assert rows["weekdays"]["next_run"] is None  # disabled


def test_next_run_is_shown_in_the_schedules_time_zone(
    superuser: Client, tasks_project: str
) -> None:
    schedule_task(tasks.noop, "0 9 * * *", name="paris-nine", time_zone="Europe/Paris")
    schedule_task(tasks.noop, "0 9 * * *", name="utc-nine", time_zone="UTC")
    html = superuser.get(LIST).content.decode()
    cells = re.findall(r'<td class="field-next-run nowrap">([^<]*)</td>', html)
    # 09:00 in each schedule's own zone, with the zone's abbreviation (CET or CEST).
    assert len(cells) == 2
    assert any(re.fullmatch(r"\d{4}-\d{2}-\d{2} 09:00 CES?T", c) for c in cells)
    assert any(re.fullmatch(r"\d{4}-\d{2}-\d{2} 09:00 UTC", c) for c in cells)


def test_add_creates_the_schedule(superuser: Client, tasks_project: str) -> None:
    assert superuser.get(LIST + "add/").status_code == 200
    response = post(superuser, LIST + "add/", VALID)
    assert texts(response) == ["The scheduled task 'nightly' was added."]
    saved = task_backends["default"].schedules.get("nightly")  # type: ignore[attr-defined]
    assert (saved.task_path, saved.schedule, saved.time_zone, saved.args, saved.kwargs) == (
        "tests.tasks.echo",
        "30 6 * * *",
        "Europe/Paris",
        [1, "a"],
        {"k": [1, 2]},
    )


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("schedule", "61 * * * *", "Invalid cron expression &#x27;61 * * * *&#x27;"),
        ("schedule", "* * * *", "use 5 fields"),
        ("time_zone", "Mars/Olympus", "Unknown time zone &#x27;Mars/Olympus&#x27;"),
        ("task_path", "tests.tasks.nope", "Not a registered task"),
        ("task_path", "os.path.join", "is a function, not a @task"),
        ("args", '{"a": 1}', "Must be a JSON list"),
        ("args", "[1,", "Not valid JSON"),
        ("kwargs", "[1]", "Must be a JSON object"),
        ("name", "bad name!", "Invalid scheduled task name"),
        ("queue_name", "unknown-queue", "refuses this task"),
    ],
)
def test_invalid_form(
    superuser: Client, tasks_project: str, field: str, value: str, error: str
) -> None:
    response = superuser.post(LIST + "add/", {**VALID, field: value})
    assert response.status_code == 200
    assert error in response.content.decode()
    assert "Please correct the error" in response.content.decode()
    with pytest.raises(ScheduleNotFound):
        task_backends["default"].schedules.get("nightly")  # type: ignore[attr-defined]


def test_add_refuses_a_taken_name(superuser: Client, tasks_project: str) -> None:
    schedule_task(tasks.noop, "* * * * *", name="nightly")
    response = superuser.post(LIST + "add/", VALID)
    assert "A scheduled task named &#x27;nightly&#x27; already exists." in response.content.decode()


def test_change_keeps_name_and_backend(superuser: Client, tasks_project: str) -> None:
    schedule_task(tasks.noop, "* * * * *", name="nightly")
    url = LIST + "default/nightly/change/"
    page = superuser.get(url)
    assert page.status_code == 200
    assert "Every minute" in page.content.decode()
    response = post(superuser, url, {**VALID, "name": "renamed", "backend": "jobs"})
    assert texts(response) == ["The scheduled task 'nightly' was changed."]
    saved = task_backends["default"].schedules.get("nightly")  # type: ignore[attr-defined]
    assert (saved.schedule, saved.backend, saved.task_path) == (
        "30 6 * * *",
        "default",
        "tests.tasks.echo",
    )
    assert superuser.get(LIST + "default/missing/change/").status_code == 404


def test_delete_confirms_then_deletes(superuser: Client, tasks_project: str) -> None:
    schedule_task(tasks.noop, "* * * * *", name="nightly")
    url = LIST + "default/nightly/delete/"
    assert b"Are you sure" in superuser.get(url).content
    response = post(superuser, url)
    assert texts(response) == ["The scheduled task 'nightly' was deleted."]
    with pytest.raises(ScheduleNotFound):
        task_backends["default"].schedules.get("nightly")  # type: ignore[attr-defined]


def test_cloud_backend_sync_failure_is_a_warning(
    superuser: Client, tasks_project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django_tasks_fs.gcp import scheduler
    from django_tasks_fs.gcp.errors import GoogleCloudError

    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise GoogleCloudError("Cloud Scheduler is unavailable (test).")

    monkeypatch.setattr(scheduler, "sync_job", unavailable)
    monkeypatch.setattr(scheduler, "delete_job", unavailable)
    response = post(superuser, LIST + "add/", {**VALID, "backend": "cloud"})
    added, warning = texts(response)
    assert added == "The scheduled task 'nightly' was added."
    assert warning.startswith(
        "Scheduled task 'nightly' was saved, but Cloud Scheduler could not be synced"
    )
    saved = task_backends["cloud"].schedules.get("nightly")  # type: ignore[attr-defined]
    assert saved.sync_error
    deleted = texts(post(superuser, LIST + "cloud/nightly/delete/"))
    assert deleted[0].startswith("The Cloud Scheduler job of 'nightly' could not be deleted")
    assert deleted[1] == "The scheduled task 'nightly' was deleted."


def act(client: Client, action: str, *keys: str) -> list[str]:
    return texts(post(client, LIST, {"action": action, "_selected_action": list(keys)}))


def test_actions_enable_disable_run_now_sync(superuser: Client, tasks_project: str) -> None:
    schedule_task(tasks.echo, "0 0 1 1 *", name="yearly", args=[7])
    store = task_backends["default"].schedules  # type: ignore[attr-defined]
    assert act(superuser, "disable", "default/yearly") == ["Scheduled task 'yearly' was disabled."]
    assert store.get("yearly").enabled is False
    assert act(superuser, "enable", "default/yearly") == ["Scheduled task 'yearly' was enabled."]
    assert store.get("yearly").enabled is True
    (message,) = act(superuser, "run_now", "default/yearly")
    execution_id = message.rsplit(" ", 1)[1].rstrip(".")
    execution = task_backends["default"].executions.get(execution_id)  # type: ignore[attr-defined]
    assert (execution.args, execution.scheduled_task) == ([7], "yearly")
    assert act(superuser, "sync", "default/yearly") == ["Scheduled task 'yearly' was synced."]
    assert act(superuser, "sync", "default/missing") == [
        "No scheduled task 'missing'; it may have been deleted."
    ]
    assert act(superuser, "sync") == ["Items must be selected in order to perform actions on them."]
    assert act(superuser, "", "default/yearly") == ["No action selected."]
