"""Importing django-tasks-google's SQL rows into Firestore."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.tasks import TaskResultStatus, task_backends

from tests import tasks

EXECUTIONS_DDL = """
CREATE TABLE django_tasks_google_taskexecution (
    id integer PRIMARY KEY, priority integer, module_path text, backend_alias text,
    queue_name text, run_after datetime NULL, takes_context bool, args text, kwargs text,
    status text, enqueued_at datetime, started_at datetime NULL, finished_at datetime NULL,
    last_attempted_at datetime NULL, errors text, worker_ids text, return_value text NULL,
    cancelled_at datetime NULL, force_cancel bool, cloud_run_job_execution_name text NULL,
    cloud_task_name text NULL, max_attempts integer NULL, lease_worker_id text NULL,
    lease_expires_at datetime NULL)
"""
SCHEDULES_DDL = """
CREATE TABLE django_tasks_google_scheduledtask (
    id integer PRIMARY KEY, name text, description text, schedule text, time_zone text,
    state text, priority integer NULL, module_path text, backend_alias text, queue_name text,
    run_after datetime NULL, takes_context bool NULL, args text, kwargs text,
    cloud_scheduler_job_name text NULL, idempotency_key text NULL)
"""


def insert(table: str, **row: Any) -> None:
    columns = ", ".join(row)
    marks = ", ".join(["%s"] * len(row))
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(row.values()))


def execution_row(pk: int, **changes: Any) -> dict[str, Any]:
    row = {
        "id": pk,
        "priority": 0,
        "module_path": "tests.tasks.echo",
        "backend_alias": "default",
        "queue_name": "default",
        "takes_context": False,
        "args": json.dumps([1, [2]]),
        "kwargs": json.dumps({"k": "v"}),
        "status": "SUCCESSFUL",
        "enqueued_at": "2026-01-01 10:00:00",
        "started_at": "2026-01-01 10:00:01",
        "finished_at": "2026-01-01 10:00:02",
        "last_attempted_at": "2026-01-01 10:00:01",
        "errors": "[]",
        "worker_ids": json.dumps(["w1"]),
        "return_value": json.dumps({"ok": True}),
        "force_cancel": False,
        "max_attempts": 3,
    }
    row.update(changes)
    return row


@pytest.fixture
def old_tables(backend: Any, django_db_blocker: Any) -> Any:
    with django_db_blocker.unblock():
        with connection.cursor() as cursor:
            cursor.execute(EXECUTIONS_DDL)
            cursor.execute(SCHEDULES_DDL)
        yield
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE django_tasks_google_taskexecution")
            cursor.execute("DROP TABLE django_tasks_google_scheduledtask")


def test_import_is_faithful_and_idempotent(
    backend: Any, old_tables: Any, django_db_blocker: Any
) -> None:
    with django_db_blocker.unblock():
        insert("django_tasks_google_taskexecution", **execution_row(1))
        insert(
            "django_tasks_google_taskexecution",
            **execution_row(
                2,
                status="FAILED",
                module_path="tests.tasks.failing",
                return_value=None,
                worker_ids=json.dumps(["w1", "w2"]),
                errors=json.dumps(
                    [{"exception_class_path": "builtins.ValueError", "traceback": "tb"}] * 2
                ),
            ),
        )
        insert(
            "django_tasks_google_taskexecution",
            **execution_row(
                3,
                status="READY",
                started_at=None,
                finished_at=None,
                last_attempted_at=None,
                worker_ids="[]",
                return_value=None,
                module_path="tests.tasks.noop",
                args="[]",
                kwargs="{}",
            ),
        )
        insert(
            "django_tasks_google_scheduledtask",
            id=1,
            name="nightly",
            description="d",
            schedule="0 3 * * *",
            time_zone="Europe/Paris",
            state="disabled",
            module_path="tests.tasks.noop",
            backend_alias="",
            queue_name="",
            args="[]",
            kwargs="{}",
        )

        out = StringIO()
        call_command("import_django_tasks_google", "--dry-run", "--map", "*=default", stdout=out)
        assert "Would import 3 execution(s), 1 schedule(s)" in out.getvalue()
        assert backend.executions.count() == 0

        out = StringIO()
        call_command("import_django_tasks_google", "--map", "*=default", stdout=out)
        assert (
            "Imported 3 execution(s), 1 schedule(s); 0 already present; 0 failed." in out.getvalue()
        )
        out = StringIO()
        call_command("import_django_tasks_google", "--map", "*=default", stdout=out)
        assert "Imported 0 execution(s), 1 schedule(s); 3 already present" in out.getvalue()

    done = tasks.echo.get_result("1")  # the old id still works
    assert done.status == TaskResultStatus.SUCCESSFUL
    assert done.return_value == {"ok": True}
    assert done.args == [1, [2]]
    assert done.attempts == 1
    failed = backend.get_result("2")
    assert failed.attempts == 2
    assert [e.exception_class_path for e in failed.errors] == ["builtins.ValueError"] * 2
    ready = backend.executions.get("3")
    assert ready.status == TaskResultStatus.READY
    assert ready.run_after == ready.enqueued_at
    schedule = backend.schedules.get("nightly")
    assert (schedule.schedule, schedule.time_zone, schedule.enabled) == (
        "0 3 * * *",
        "Europe/Paris",
        False,
    )

    from django_tasks_fs.testing import TaskRunner

    (ran,) = TaskRunner().run_all(backend="default")  # the imported READY one runs here
    assert ran.id == "3"
    assert ran.status == TaskResultStatus.SUCCESSFUL


def test_bad_rows_are_reported_not_silently_dropped(
    backend: Any, old_tables: Any, django_db_blocker: Any
) -> None:
    with django_db_blocker.unblock():
        insert("django_tasks_google_taskexecution", **execution_row(7, args="not json"))
        insert("django_tasks_google_taskexecution", **execution_row(8))
        with pytest.raises(CommandError, match="1 row"):
            call_command(
                "import_django_tasks_google",
                "--map",
                "*=default",
                stdout=StringIO(),
                stderr=StringIO(),
            )
    assert backend.executions.get("8").status == TaskResultStatus.SUCCESSFUL
    assert backend.executions.count() == 1


def test_clear_errors(backend: Any, django_db_blocker: Any) -> None:
    with django_db_blocker.unblock():
        with pytest.raises(CommandError, match="Tables not found"):
            call_command("import_django_tasks_google")
        with pytest.raises(CommandError, match="Invalid --map"):
            call_command("import_django_tasks_google", "--map", "x=nope")
    assert task_backends["default"] is not None
