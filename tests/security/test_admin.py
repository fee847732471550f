"""Every admin action POSTed by staff lacking its permission, or without a valid CSRF
token, is refused and changes nothing; then the same POST, allowed, does act."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.tasks import TaskResultStatus, task_backends
from django.test import Client

from django_tasks_fs.store import ScheduledTask, TaskExecution
from tests.admin.conftest import ADMIN, failed
from tests.admin.test_executions import detail
from tests.admin.test_schedules import VALID

from .conftest import snapshot

EXECUTIONS = ADMIN + "taskexecution/"
SCHEDULES = ADMIN + "scheduledtask/"
ALL_PERMISSIONS = [
    f"{verb}_{model}"
    for verb in ("view", "add", "change", "delete")
    for model in ("taskexecution", "scheduledtask")
]


@pytest.fixture(autouse=True)
def fast_passwords(settings: Any) -> None:
    """Three users per test: skip the deliberately slow password hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


#: Execution actions: the permission each needs, and the state it acts on (READY on a
#: backend that supports force cancel, or FAILED).
EXECUTION_ACTIONS = [
    ("cancel", "change_taskexecution", "ready"),
    ("force_cancel", "change_taskexecution", "ready"),
    ("retry", "change_taskexecution", "failed"),
    ("delete", "delete_taskexecution", "failed"),
]
#: (case, the permission it needs, the execution it acts on). Cases: "detail X" / "list X"
#: post action X from an execution's page / the list; "schedules X" the schedules list
#: action X; "schedule add / change / delete" the schedule pages.
CASES = [
    *[(f"{via} {name}", perm, state) for name, perm, state in EXECUTION_ACTIONS for via in ("detail", "list")],
    *[(f"schedules {name}", "change_scheduledtask", None) for name in ("enable", "disable", "run_now", "sync")],
    ("schedule add", "add_scheduledtask", None),
    ("schedule change", "change_scheduledtask", None),
    ("schedule delete", "delete_scheduledtask", None),
]  # fmt: skip
CHANGED = {**VALID, "name": "existing", "schedule": "15 4 * * *"}


def request_for(case: str, execution: TaskExecution | None) -> tuple[str, dict[str, Any]]:
    """The URL and form data of ``case``."""
    kind, name = case.split(" ")
    if kind == "detail":
        assert execution is not None
        return detail(execution) + f"{name}/", {}
    if kind == "list":
        assert execution is not None
        selected = {"backend": execution.backend, "_selected_action": [execution.id]}
        return EXECUTIONS, {"action": name, **selected, "confirm": "yes"}
    if kind == "schedules":
        return SCHEDULES, {"action": name, "_selected_action": ["default/existing"]}
    return {
        "add": (SCHEDULES + "add/", VALID),
        "change": (SCHEDULES + "default/existing/change/", CHANGED),
        "delete": (SCHEDULES + "default/existing/delete/", {}),
    }[name]


def staff(make_user: Any, *perms: str, superuser: bool = False, name: str) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user(*perms, superuser=superuser, name=name))
    client.get("/admin/")  # sets the CSRF cookie, as a browser session would have it
    return client


def csrf_post(client: Client, url: str, data: dict[str, Any], token: str | None) -> Any:
    return client.post(url, data if token is None else {**data, "csrfmiddlewaretoken": token})


@pytest.mark.parametrize(("case", "permission", "state"), CASES, ids=[c[0] for c in CASES])
def test_admin_action_needs_its_permission_and_a_csrf_token(
    case: str,
    permission: str,
    state: str | None,
    add_execution: Any,
    make_user: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    default = task_backends["default"]
    default.schedules.create(  # type: ignore[attr-defined]
        ScheduledTask(
            name="existing",
            task_path="tests.tasks.noop",
            schedule="0 * * * *",
            enabled=case != "schedules enable",
        )
    )
    synced: list[str] = []  # sync is a no-op locally: count the calls instead
    for alias in ("default", "jobs"):
        backend = task_backends[alias]
        monkeypatch.setattr(backend, "sync_schedule", lambda s: synced.append(s.name) or s)
        monkeypatch.setattr(backend, "delete_schedule", lambda s: synced.append(s.name))
    target = {"ready": lambda: add_execution("jobs"), "failed": lambda: add_execution(**failed())}
    url, data = request_for(case, target[state]() if state else None)

    def effects() -> tuple[Any, ...]:
        return snapshot(default), tuple(synced)

    before = effects()
    others = [p for p in ALL_PERMISSIONS if p != permission]
    lacking = staff(make_user, *others, name="lacking")
    assert csrf_post(lacking, url, data, lacking.cookies["csrftoken"].value).status_code == 403
    admin = staff(make_user, superuser=True, name="admin")
    stranger = staff(make_user, superuser=True, name="stranger")
    for token in (None, "x" * 64, stranger.cookies["csrftoken"].value):
        response = csrf_post(admin, url, data, token)
        assert response.status_code == 403, (token, response.status_code)
        assert b"CSRF verification failed" in response.content
    assert effects() == before
    # Control: the same POST, allowed and with the token, acts.
    done = csrf_post(admin, url, data, admin.cookies["csrftoken"].value)
    assert done.status_code == 302, done.content[:500]
    assert effects() != before


def test_an_execution_list_action_never_sends_the_admin_off_site(
    add_execution: Any, make_user: Any
) -> None:
    admin = staff(make_user, superuser=True, name="admin")
    execution = add_execution()
    token = admin.cookies["csrftoken"].value
    for target in [
        "//evil.example/",
        "/\\evil.example/",
        "///evil.example/",
        "https://evil.example/",
        "javascript:alert(1)",
    ]:
        data = {
            "action": "cancel",
            "backend": "default",
            "_selected_action": [execution.id],
            "return_to": target,
            "csrfmiddlewaretoken": token,
        }
        confirmation = admin.post(EXECUTIONS, data)  # its "No, take me back" link
        assert confirmation.status_code == 200
        assert b"evil.example" not in confirmation.content, target
        done = admin.post(EXECUTIONS, {**data, "confirm": "yes"})
        assert done.status_code == 302
        assert done["Location"] == EXECUTIONS, (target, done["Location"])


@pytest.mark.parametrize(
    "url",
    [
        EXECUTIONS + "default/__x__/",
        EXECUTIONS + "default/__x__/cancel/",
        EXECUTIONS + "default/%2E%2E/",
        EXECUTIONS + "?cursor=__x__",
        EXECUTIONS + "?cursor=..",
        SCHEDULES + "default/__x__/change/",
        SCHEDULES + "default/__x__/delete/",
    ],
)
def test_reserved_firestore_ids_in_admin_urls_are_not_found(
    url: str, add_execution: Any, make_user: Any
) -> None:
    """Firestore answers InvalidArgument for ids like '__x__': a 404 (or the first page),
    never a 500."""
    admin = staff(make_user, superuser=True, name="admin")
    response = admin.get(url)
    assert response.status_code == (200 if "cursor" in url else 404)


def test_reserved_ids_in_list_actions_and_schedule_names_are_refused(
    add_execution: Any, make_user: Any
) -> None:
    admin = staff(make_user, superuser=True, name="admin")
    token = admin.cookies["csrftoken"].value
    before = snapshot(task_backends["default"])
    listed = admin.post(
        EXECUTIONS,
        {
            "action": "cancel",
            "backend": "default",
            "_selected_action": ["__x__", "a/b"],
            "confirm": "yes",
            "csrfmiddlewaretoken": token,
        },
    )
    assert listed.status_code == 302
    for key in ("default/__x__", "default/a/b"):
        form = {"action": "disable", "_selected_action": [key], "csrfmiddlewaretoken": token}
        assert admin.post(SCHEDULES, form).status_code == 302
    added = admin.post(SCHEDULES + "add/", {**VALID, "name": "__x__", "csrfmiddlewaretoken": token})
    assert added.status_code == 200
    assert "not starting and ending with &#x27;__&#x27;" in added.content.decode()
    assert snapshot(task_backends["default"]) == before


@pytest.mark.parametrize(
    ("path", "imported"),
    [
        ("tests.security.import_canary.fire", True),  # well formed: imported, then refused
        ("tests.security.import_canary..fire", False),
        ("django.__main__.main", False),
        ("os.system", False),
        ("tests.tasks._record", False),
        ("../../etc/passwd", False),
    ],
)
def test_the_schedule_form_accepts_only_registered_tasks(
    path: str, imported: bool, add_execution: Any, make_user: Any, canaries: list[str]
) -> None:
    admin = staff(make_user, superuser=True, name="admin")
    token = admin.cookies["csrftoken"].value
    before = snapshot(task_backends["default"])
    response = admin.post(
        SCHEDULES + "add/", {**VALID, "task_path": path, "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 200
    assert "Not a registered task" in response.content.decode()
    assert snapshot(task_backends["default"]) == before
    assert canaries == (["tests.security.import_canary"] if imported else [])


def test_retrying_an_execution_with_a_hostile_task_path_is_refused(
    add_execution: Any, make_user: Any, canaries: list[str]
) -> None:
    admin = staff(make_user, superuser=True, name="admin")
    execution = add_execution(**failed(task_path="tests.security.import_canary..fire"))
    before = snapshot(task_backends["default"])
    response = admin.post(
        detail(execution) + "retry/", {"csrfmiddlewaretoken": admin.cookies["csrftoken"].value}
    )
    assert response.status_code == 302
    assert snapshot(task_backends["default"]) == before
    assert canaries == []
    assert task_backends["default"].executions.get(execution.id).status == TaskResultStatus.FAILED  # type: ignore[attr-defined]


@pytest.mark.django_db
def test_the_permission_matrix_names_real_permissions() -> None:
    """A typo in ALL_PERMISSIONS would quietly weaken every test above."""
    found = set(
        Permission.objects.filter(codename__in=ALL_PERMISSIONS).values_list("codename", flat=True)
    )
    assert found == set(ALL_PERMISSIONS)
