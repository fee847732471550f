"""Admin fixtures: users with chosen permissions, and executions in the emulator."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.tasks import TaskResultStatus, task_backends
from django.test import Client

from django_tasks_fs.store import ErrorEntry, TaskExecution, new_execution_id

from .browser import browser  # noqa: F401  (the fixture, for the browser tests)

ADMIN = "/admin/django_tasks_fs/"
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "tests/tasks.py", line 37, in failing\n'
    "    raise ValueError(message)\n"
    "ValueError: <script>alert('x')</script>\n"
)


@pytest.fixture
def make_user(db: Any, django_user_model: Any) -> Callable[..., Any]:
    """A staff user with the given ``app.codename`` permissions (or a superuser)."""

    def make(*perms: str, superuser: bool = False, name: str = "staff") -> Any:
        user = django_user_model.objects.create_user(
            username=name, password="pw", is_staff=True, is_superuser=superuser
        )
        for perm in perms:
            user.user_permissions.add(Permission.objects.get(codename=perm))
        return user

    return make


@pytest.fixture
def login(make_user: Callable[..., Any]) -> Callable[..., Client]:
    """A test client logged in as a new staff user with ``perms`` (CSRF enforced)."""

    def make(*perms: str, superuser: bool = False) -> Client:
        client = Client(enforce_csrf_checks=False)
        client.force_login(make_user(*perms, superuser=superuser))
        return client

    return make


@pytest.fixture
def superuser(login: Callable[..., Client], tasks_project: str) -> Client:
    return login(superuser=True)


@pytest.fixture
def add_execution(tasks_project: str) -> Callable[..., TaskExecution]:
    """Write an execution to a backend's store (``backend`` alias, default 'default')."""

    def make(backend: str = "default", **overrides: Any) -> TaskExecution:
        store = task_backends[backend].executions  # type: ignore[attr-defined]
        now = store.clock.now()
        values: dict[str, Any] = {
            "id": new_execution_id(),
            "task_path": "tests.tasks.noop",
            "backend": backend,
            "queue_name": "default",
            "enqueued_at": now,
            "run_after": now,
            "max_attempts": 3,
        }
        values.update(overrides)
        execution: TaskExecution = store.create(TaskExecution(**values))
        return execution

    return make


def running(**overrides: Any) -> dict[str, Any]:
    """Fields of a RUNNING execution whose lease is held for another hour."""
    from django.utils import timezone

    now = timezone.now()
    return {
        "status": TaskResultStatus.RUNNING,
        "started_at": now,
        "last_attempted_at": now,
        "attempts": 1,
        "worker_ids": ["worker-1"],
        "lease_owner": "worker-1:abc",
        "lease_expires_at": now + timedelta(hours=1),
        "heartbeat_at": now,
        **overrides,
    }


def failed(**overrides: Any) -> dict[str, Any]:
    from django.utils import timezone

    now = timezone.now()
    return {
        "task_path": "tests.tasks.failing",
        "status": TaskResultStatus.FAILED,
        "args": ["boom", [1, [2]]],
        "kwargs": {"nested": {"a": [1, 2]}},
        "started_at": now - timedelta(seconds=2),
        "finished_at": now,
        "attempts": 1,
        "worker_ids": ["worker-7"],
        "errors": [ErrorEntry(exception_class_path="builtins.ValueError", traceback=TRACEBACK)],
        **overrides,
    }
