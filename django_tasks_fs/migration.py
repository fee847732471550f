"""Copy django-tasks-google's SQL rows (TaskExecution, ScheduledTask) into Firestore.

Idempotent: an execution keeps its old id (``str(pk)``), so ``get_result(old_id)`` still
works and a second run skips what is already there; a schedule is upserted by name.
Tasks already queued in Cloud Tasks by django-tasks-google carry the same
``execution_id`` / ``backend`` form body our ``execute/`` endpoint reads, so they run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connections
from django.tasks import TaskResultStatus
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .backends.base import FirestoreBackend
from .store import DispatchState, ErrorEntry, ScheduledTask, TaskExecution

EXECUTIONS_TABLE = "django_tasks_google_taskexecution"
SCHEDULES_TABLE = "django_tasks_google_scheduledtask"


@dataclass
class Report:
    """What an import did (or, in a dry run, would do)."""

    imported: int = 0
    skipped: int = 0  #: already in Firestore
    failed: list[str] = field(default_factory=list)  #: "id: reason"
    schedules: int = 0


def _json(value: Any, default: Any) -> Any:
    if value is None or value == "":
        return default
    return json.loads(value) if isinstance(value, str) else value


def _when(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value if value is None or timezone.is_aware(value) else timezone.make_aware(value)
    parsed = parse_datetime(str(value))
    if parsed is None:
        raise ValueError(f"not a datetime: {value!r}")
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)


def _rows(database: str, table: str) -> Iterator[dict[str, Any]]:
    with connections[database].cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} ORDER BY id")
        columns = [c[0] for c in cursor.description]
        for row in cursor.fetchall():
            yield dict(zip(columns, row, strict=True))


def execution_from_row(row: Mapping[str, Any], backend: FirestoreBackend) -> TaskExecution:
    """Map one django-tasks-google TaskExecution row to our document."""
    enqueued = _when(row["enqueued_at"]) or timezone.now()
    worker_ids = [str(w) for w in _json(row.get("worker_ids"), [])]
    status = TaskResultStatus(row["status"])
    cloud = row.get("cloud_task_name") or row.get("cloud_run_job_execution_name")
    if status in (TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED):
        dispatch = DispatchState.DISPATCHED if cloud else DispatchState.LOCAL
    else:
        dispatch = backend.initial_dispatch_state() if not cloud else DispatchState.DISPATCHED
    return TaskExecution(
        id=str(row["id"]),
        task_path=row["module_path"],
        backend=backend.alias,
        queue_name=row.get("queue_name") or "default",
        priority=int(row.get("priority") or 0),
        takes_context=bool(row.get("takes_context")),
        args=list(_json(row.get("args"), [])),
        kwargs=dict(_json(row.get("kwargs"), {})),
        status=status,
        enqueued_at=enqueued,
        run_after=_when(row.get("run_after")) or enqueued,
        started_at=_when(row.get("started_at")),
        last_attempted_at=_when(row.get("last_attempted_at")),
        finished_at=_when(row.get("finished_at")),
        return_value=_json(row.get("return_value"), None),
        errors=[ErrorEntry(**e) for e in _json(row.get("errors"), [])],
        worker_ids=worker_ids[-backend.config.max_history_entries :],
        attempts=len(worker_ids),
        max_attempts=row.get("max_attempts"),
        run_once=backend.config.run_once,
        lease_owner=row.get("lease_worker_id"),
        lease_expires_at=_when(row.get("lease_expires_at")),
        cancelled_at=_when(row.get("cancelled_at")),
        force_cancel=bool(row.get("force_cancel")),
        dispatch_state=dispatch,
        cloud_task_name=row.get("cloud_task_name"),
        cloud_run_execution=row.get("cloud_run_job_execution_name"),
    )


def schedule_from_row(row: Mapping[str, Any], backend: FirestoreBackend) -> ScheduledTask:
    """Map one django-tasks-google ScheduledTask row to our document."""
    return ScheduledTask(
        name=row["name"],
        task_path=row["module_path"],
        schedule=row["schedule"],
        time_zone=row.get("time_zone") or "UTC",
        args=list(_json(row.get("args"), [])),
        kwargs=dict(_json(row.get("kwargs"), {})),
        backend=backend.alias,
        queue_name=row.get("queue_name") or "default",
        priority=int(row.get("priority") or 0),
        takes_context=bool(row.get("takes_context")),
        enabled=(row.get("state") or "enabled") == "enabled",
        description=row.get("description") or "",
        cloud_scheduler_job=row.get("cloud_scheduler_job_name"),
    )


def import_rows(
    backends: Mapping[str, FirestoreBackend], *, database: str = "default", dry_run: bool = False
) -> Report:
    """Copy every row into the backend its old alias maps to (``backends``; "*" = any other)."""
    report = Report()

    def target(alias: str | None) -> FirestoreBackend:
        found = backends.get(alias or "") or backends.get("*")
        if found is None:
            raise LookupError(f"no backend for old alias {alias!r} (map it, or map '*')")
        return found

    for row in _rows(database, EXECUTIONS_TABLE):
        try:
            backend = target(row.get("backend_alias"))
            execution = execution_from_row(row, backend)
            backend.executions.check_writable(execution)
            if dry_run:
                report.imported += 1
                continue
            if _exists(backend, execution.id):
                report.skipped += 1
                continue
            backend.executions.create(execution)
            report.imported += 1
        except Exception as exc:
            report.failed.append(f"{row.get('id')}: {type(exc).__name__}: {exc}")
    for row in _rows(database, SCHEDULES_TABLE):
        try:
            backend = target(row.get("backend_alias"))
            schedule = schedule_from_row(row, backend)
            if not dry_run:
                backend.schedules.save(schedule)
            report.schedules += 1
        except Exception as exc:
            report.failed.append(f"schedule {row.get('name')}: {type(exc).__name__}: {exc}")
    return report


def _exists(backend: FirestoreBackend, execution_id: str) -> bool:
    from .exceptions import ExecutionNotFound

    try:
        backend.executions.get(execution_id)
    except ExecutionNotFound:
        return False
    return True
