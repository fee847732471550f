"""The task executions admin: list, filters, search, pagination, detail, actions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.contrib.messages import get_messages
from django.tasks import TaskResultStatus, task_backends
from django.test import Client

from django_tasks_fs.store import ExecutionFilter, TaskExecution
from tests import tasks

from .conftest import ADMIN, failed, running

LIST = ADMIN + "taskexecution/"
Add = Callable[..., TaskExecution]


def post(client: Client, url: str, data: dict[str, Any] | None = None) -> Any:
    """POST and follow the redirect, so the messages are shown (and consumed) once."""
    return client.post(url, data or {}, follow=True)


def texts(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def shown(response: Any) -> list[str]:
    return [row["execution"].id for row in response.context["rows"]]


def detail(execution: TaskExecution) -> str:
    return f"{LIST}{execution.backend}/{execution.id}/"


def test_admin_index_lists_both_models(superuser: Client) -> None:
    response = superuser.get("/admin/")
    assert response.status_code == 200
    assert b"Task executions" in response.content
    assert b"Scheduled tasks" in response.content
    assert b'href="/admin/django_tasks_fs/taskexecution/"' in response.content


def test_list_shows_columns_counts_and_status_colours(
    superuser: Client, add_execution: Add
) -> None:
    done = add_execution(**failed())
    ready = add_execution()
    response = superuser.get(LIST)
    assert response.status_code == 200
    html = response.content.decode()
    for column in ("Id", "Task", "Status", "Backend", "Queue", "Priority", "Attempts",
                   "Enqueued", "Started", "Finished", "Duration"):  # fmt: skip
        assert f"<span>{column}" in html
    assert done.id in html
    assert ready.id in html
    assert html.index(ready.id) < html.index(done.id)  # newest enqueued first
    assert "<strong>FAILED</strong>: 1" in html
    assert "<strong>READY</strong>: 1" in html
    assert "icon-no.svg" in html
    assert "#dd4646" in html
    assert "2.000 s" in html  # duration of the failed one


def test_filters_by_status_queue_task_and_backend(superuser: Client, add_execution: Add) -> None:
    a = add_execution(**failed())
    b = add_execution(queue_name="emails")
    c = add_execution(task_path="tests.tasks.echo")
    other = add_execution(backend="jobs")
    cases = {
        "?status=FAILED": {a.id},
        "?queue=emails": {b.id},
        "?task=tests.tasks.echo": {c.id},
        "?backend=jobs": {other.id},
        "?q=tests.tasks.echo": {c.id},
        f"?q={b.id}": {b.id},
        "?q=" + "0" * 32: set(),
    }
    every = {a.id, b.id, c.id, other.id}
    for query, expected in cases.items():
        html = superuser.get(LIST + query).content.decode()
        shown = {i for i in every if i in html}
        assert shown == expected, query


def test_unknown_filter_values_fall_back_with_a_message(
    superuser: Client, tasks_project: str
) -> None:
    response = superuser.get(LIST + "?status=NOPE&backend=nope")
    assert response.status_code == 200
    assert texts(response) == [
        "Unknown backend 'nope'; showing 'default'.",
        "Unknown status 'NOPE'; showing all statuses.",
    ]


def test_cursor_pagination_next_previous_first(
    superuser: Client, add_execution: Add, monkeypatch: Any
) -> None:
    from django_tasks_fs.admin.executions import TaskExecutionAdmin

    monkeypatch.setattr(TaskExecutionAdmin, "list_per_page", 2)
    ids = [add_execution().id for _ in range(5)][::-1]  # newest first
    response = superuser.get(LIST)
    seen = shown(response)
    assert seen == ids[:2]
    for page in (2, 3):
        response = superuser.get(LIST + response.context["next_url"])
        assert f"Page {page}" in response.content.decode()
        seen += shown(response)
    assert seen == ids
    assert response.context["next_url"] is None
    assert shown(superuser.get(LIST + response.context["previous_url"])) == ids[2:4]
    assert shown(superuser.get(LIST + response.context["first_url"])) == ids[:2]
    assert superuser.get(LIST + "?cursor=" + "f" * 32).status_code == 200  # stale cursor


def test_detail_shows_everything_escaped(superuser: Client, add_execution: Add) -> None:
    execution = add_execution(
        **failed(return_value=None, cloud_task_name="projects/p/locations/l/queues/q/tasks/t")
    )
    response = superuser.get(detail(execution))
    assert response.status_code == 200
    html = response.content.decode()
    assert "ValueError: &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "<script>alert" not in html
    assert "builtins.ValueError" in html
    assert "worker-7" in html
    assert "&quot;nested&quot;: {\n    &quot;a&quot;: [\n      1," in html  # pretty JSON
    assert "projects/p/locations/l/queues/q/tasks/t" in html
    for label in ("Lease owner", "Last heartbeat", "Dispatch state", "Cloud Run execution"):
        assert label in html


def test_detail_shows_the_group_of_a_member(superuser: Client, add_execution: Add) -> None:
    assert "members)" not in superuser.get(detail(add_execution())).content.decode()
    member = add_execution(group_id="g" * 32, group_size=100)
    html = superuser.get(detail(member)).content.decode()
    assert f"{'g' * 32} (one of 100 members)" in html


def test_detail_shows_the_unique_key_it_was_enqueued_with(
    superuser: Client, add_execution: Add
) -> None:
    assert "Unique key" not in superuser.get(detail(add_execution())).content.decode()
    html = superuser.get(detail(add_execution(unique_key="sync:<42>"))).content.decode()
    assert "Unique key" in html
    assert "sync:&lt;42&gt;" in html  # escaped


def test_detail_404s(superuser: Client, tasks_project: str) -> None:
    assert superuser.get(f"{LIST}default/{'0' * 32}/").status_code == 404
    assert superuser.get(f"{LIST}nope/{'0' * 32}/").status_code == 404
    assert superuser.get(f"{LIST}default/{'0' * 32}/explode/").status_code == 404
    assert superuser.get(f"{LIST}{'0' * 32}/").status_code == 404
    assert superuser.get(f"{LIST}{'0' * 32}/change/").status_code == 404
    assert superuser.get(f"{LIST}__reserved__/").status_code == 404


def test_django_style_object_urls_lead_to_the_detail(superuser: Client, add_execution: Add) -> None:
    """``taskexecution/<id>/`` and ``<id>/change/``, as Django's admin shapes them."""
    execution = add_execution("jobs")
    for url in (f"{LIST}{execution.id}/", f"{LIST}{execution.id}/change/"):
        response = superuser.get(url)
        assert response.status_code == 302
        assert response["Location"] == detail(execution)


def test_detail_offers_only_what_applies(superuser: Client, add_execution: Add) -> None:
    def offered(execution: TaskExecution) -> set[str]:
        html = superuser.get(detail(execution)).content.decode()
        return {name for name in ("cancel", "force_cancel", "retry", "delete")
                if f'class="tfs-action-{name}"' in html}  # fmt: skip

    assert offered(add_execution(**failed())) == {"retry", "delete"}
    assert offered(add_execution()) == {"cancel", "delete"}
    assert offered(add_execution("jobs", **running())) == {"cancel", "force_cancel"}


def test_confirmation_with_nothing_to_do_offers_no_confirm_button(
    superuser: Client, add_execution: Add
) -> None:
    done = add_execution(**failed())
    page = superuser.get(detail(done) + "cancel/").content.decode()
    assert "Cancel: nothing to do; it does not apply to this execution." in page
    assert "I\u2019m sure" not in page
    assert 'id="tfs-confirm"' not in page


# -- actions ---------------------------------------------------------------------------


def test_cancel_confirms_then_cancels(superuser: Client, add_execution: Add) -> None:
    execution = add_execution()
    url = detail(execution) + "cancel/"
    page = superuser.get(url)
    assert page.status_code == 200
    assert b"Yes, I\xe2\x80\x99m sure" in page.content
    assert task_backends["default"].executions.get(execution.id).status == "READY"  # type: ignore[attr-defined]
    response = post(superuser, url, {"confirm": "yes"})
    assert response.redirect_chain[-1][0] == detail(execution)
    assert texts(response) == [f"Execution {execution.id} was cancelled before it ran."]
    stored = task_backends["default"].executions.get(execution.id)  # type: ignore[attr-defined]
    assert stored.status == TaskResultStatus.FAILED


def test_cancel_running_requests_stop(superuser: Client, add_execution: Add) -> None:
    execution = add_execution(**running())
    response = post(superuser, detail(execution) + "cancel/")
    assert texts(response) == [f"Execution {execution.id} is running: it was asked to stop."]
    stored = task_backends["default"].executions.get(execution.id)  # type: ignore[attr-defined]
    assert stored.cancelled_at is not None
    assert stored.status == TaskResultStatus.RUNNING


def test_cancel_of_finished_is_refused(superuser: Client, add_execution: Add) -> None:
    execution = add_execution(**failed())
    page = superuser.get(detail(execution) + "cancel/").content.decode()
    assert "it already finished (FAILED)" in page
    response = post(superuser, detail(execution) + "cancel/")
    assert texts(response) == [
        f"Cannot cancel execution {execution.id!r}: it already finished (FAILED)."
    ]


def test_force_cancel_refused_where_unsupported(superuser: Client, add_execution: Add) -> None:
    execution = add_execution(**running())
    response = post(superuser, detail(execution) + "force_cancel/")
    assert texts(response) == [
        f"Cannot force cancel execution {execution.id!r}: backend 'default' does not "
        "support forceful cancellation; use Cancel."
    ]
    assert task_backends["default"].executions.get(execution.id).cancelled_at is None  # type: ignore[attr-defined]


def test_force_cancel_where_supported(superuser: Client, add_execution: Add) -> None:
    execution = add_execution("jobs", **running())
    response = post(superuser, detail(execution) + "force_cancel/")
    assert texts(response) == [
        f"Execution {execution.id} is running: it was asked to stop and is being stopped."
    ]
    stored = task_backends["jobs"].executions.get(execution.id)  # type: ignore[attr-defined]
    assert stored.force_cancel is True


def test_retry_enqueues_a_copy(superuser: Client, add_execution: Add) -> None:
    execution = add_execution(**failed(queue_name="emails"))
    response = post(superuser, detail(execution) + "retry/")
    (message,) = texts(response)
    store = task_backends["default"].executions  # type: ignore[attr-defined]
    (copy,) = [e for e in store.page(ExecutionFilter()).items if e.id != execution.id]
    # The new id links to its page.
    assert message == (
        f'Execution {execution.id} was retried as <a href="{detail(copy)}">{copy.id}</a>.'
    )
    assert superuser.get(detail(copy)).status_code == 200
    assert (copy.status, copy.args, copy.kwargs, copy.queue_name) == (
        TaskResultStatus.READY,
        execution.args,
        execution.kwargs,
        "emails",
    )


def test_retry_refused_for_unfinished_and_unimportable(
    superuser: Client, add_execution: Add
) -> None:
    ready = add_execution()
    gone = add_execution(**failed(task_path="tests.tasks.does_not_exist"))
    assert texts(post(superuser, detail(ready) + "retry/")) == [
        f"Cannot retry execution {ready.id!r}: it is READY; only finished executions can be retried."
    ]
    (message,) = texts(post(superuser, detail(gone) + "retry/"))
    assert message.startswith(
        f"Cannot retry execution {gone.id!r}: Task 'tests.tasks.does_not_exist'"
    )


def test_delete_and_refusal_for_running(superuser: Client, add_execution: Add) -> None:
    done = add_execution(**failed())
    busy = add_execution(**running())
    response = post(superuser, detail(done) + "delete/")
    assert response.redirect_chain[-1][0] == LIST + "?backend=default"
    assert texts(response) == [f"Execution {done.id} was deleted."]
    assert superuser.get(detail(done)).status_code == 404
    assert texts(post(superuser, detail(busy) + "delete/")) == [
        f"Cannot delete execution {busy.id!r}: it is RUNNING; cancel it first."
    ]


def test_list_action_confirms_then_runs_on_each(superuser: Client, add_execution: Add) -> None:
    ready = add_execution()
    done = add_execution(**failed())
    form = {"action": "cancel", "backend": "default", "_selected_action": [ready.id, done.id],
            "return_to": LIST + "?status=READY"}  # fmt: skip
    page = post(superuser, LIST, form)
    assert page.status_code == 200
    assert "Cancel 1 of 2 selected task executions?" in page.content.decode()
    response = post(superuser, LIST, {**form, "confirm": "yes"})
    assert response.redirect_chain[-1][0] == LIST + "?status=READY"
    assert sorted(texts(response)) == sorted(
        [
            f"Execution {ready.id} was cancelled before it ran.",
            f"Cannot cancel execution {done.id!r}: it already finished (FAILED).",
        ]
    )


def test_list_action_without_selection_or_action(superuser: Client, add_execution: Add) -> None:
    add_execution()
    assert texts(post(superuser, LIST, {"action": "cancel", "backend": "default"})) == [
        "Items must be selected in order to perform actions on them."
    ]
    assert texts(post(superuser, LIST, {"action": "", "backend": "default"})) == [
        "No action selected."
    ]
    response = post(superuser, LIST, {"action": "delete", "backend": "default",
                                      "_selected_action": ["0" * 32], "confirm": "yes"})  # fmt: skip
    assert texts(response) == [f"No task execution {'0' * 32!r}; it may have been deleted."]


def test_detail_shows_the_effective_policy_and_its_sources(superuser: Client) -> None:
    result = tasks.fails_with.using(timeout=timedelta(seconds=20)).enqueue("connection")
    execution = task_backends["default"].executions.get(result.id)  # type: ignore[attr-defined]
    response = superuser.get(detail(execution))
    assert response.status_code == 200
    assert response.context["policy"] == [
        ("Max attempts", "5 (task)"),
        ("Run once", "False (default)"),
        ("Timeout", "20 s"),
        ("Backoff", "0:00:30 between attempts (task)"),
        ("Retry on", "builtins.ConnectionError"),
        (
            "Never retry on",
            "django_tasks_fs.exceptions.PermanentTaskError, builtins.ConnectionRefusedError",
        ),
    ]
    html = response.content.decode()
    assert 'id="tfs-policy"' in html
    assert "0:00:30 between attempts (task)" in html
