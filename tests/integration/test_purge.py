"""``purge_task_executions``: old finished executions go, everything else stays."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.tasks import TaskResultStatus

from django_tasks_fs.store import ExecutionFilter
from tests import tasks


def finish(backend: Any, result: Any, status: TaskResultStatus, days_ago: float) -> None:
    when = backend.executions.clock.now() - timedelta(days=days_ago)
    backend.executions._compare_and_set(
        result.id, lambda current, now: current.evolve(status=status, finished_at=when)
    )


def test_purge(backend: Any) -> None:
    old_ok = [tasks.noop.enqueue() for _ in range(3)]
    old_failed = tasks.noop.enqueue()
    recent = tasks.noop.enqueue()
    ready = tasks.noop.enqueue()
    for result in old_ok:
        finish(backend, result, TaskResultStatus.SUCCESSFUL, 20)
    finish(backend, old_failed, TaskResultStatus.FAILED, 30)
    finish(backend, recent, TaskResultStatus.SUCCESSFUL, 1)

    out = StringIO()
    call_command("purge_task_executions", "--backend", "default", "--dry-run", stdout=out)
    assert "Would delete 4 execution(s)." in out.getvalue()
    assert backend.executions.count() == 6

    call_command(
        "purge_task_executions", "--backend", "default", "--status", "FAILED", stdout=StringIO()
    )
    assert backend.executions.count() == 5

    out = StringIO()
    call_command("purge_task_executions", "--backend", "default", "--batch-size", "2", stdout=out)
    assert "Deleted 3 execution(s)." in out.getvalue()
    remaining = {e.id for e in backend.executions.page(ExecutionFilter(), limit=10).items}
    assert remaining == {recent.id, ready.id}


def test_purge_rejects_bad_arguments(backend: Any) -> None:
    with pytest.raises(CommandError, match="Not django_tasks_fs aliases: nope"):
        call_command("purge_task_executions", "--backend", "nope")
    with pytest.raises(CommandError, match="--batch-size"):
        call_command("purge_task_executions", "--batch-size", "501")
