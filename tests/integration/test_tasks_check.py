"""manage.py tasks_check: its exit status and lines, on the in-memory store."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.tasks import TaskResultStatus

from django_tasks_fs.store import TaskExecution, new_execution_id
from django_tasks_fs.store.ops import Create, OpCounts
from tests import tasks


def check(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("tasks_check", "--backend", "default", *args, stdout=out)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue()
    return 0, out.getvalue()


def backdate(backend: Any, execution_id: str, seconds: float) -> None:
    backend.executions._compare_and_set(
        execution_id,
        lambda current, now: current.evolve(run_after=now - timedelta(seconds=seconds)),
    )


def test_an_empty_backend_passes(backend: Any) -> None:
    code, out = check("--max-backlog", "0", "--max-age", "0")
    assert code == 0
    assert out == "tasks_check: OK backend=default queue=* ready=0 waiting=none due\n"


def test_a_backlog_over_the_limit_fails(backend: Any) -> None:
    for _ in range(3):
        tasks.noop.enqueue()
    assert check("--max-backlog", "3")[0] == 0
    code, out = check("--max-backlog", "2")
    assert code == 1
    assert out.startswith(
        "tasks_check: FAIL backend=default queue=*: more than 2 READY ready=3+ waiting="
    )


def test_a_queue_is_checked_on_its_own(backend: Any) -> None:
    tasks.noop.using(queue_name="emails").enqueue()
    tasks.noop.using(queue_name="emails").enqueue()
    code, out = check("--max-backlog", "1", "--queue", "default", "--queue", "emails")
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "tasks_check: OK backend=default queue=default ready=0 waiting=none due"
    assert lines[1].startswith("tasks_check: FAIL backend=default queue=emails: more than 1")


def test_the_next_execution_waiting_too_long_fails(backend: Any) -> None:
    result = tasks.noop.enqueue()
    backdate(backend, result.id, 600)
    assert check("--max-age", "900")[0] == 0
    code, out = check("--max-age", "300")
    assert code == 1
    assert "FAIL backend=default queue=*: next in line due 600s ago (> 300s)" in out


def test_an_execution_not_due_yet_is_not_waiting(backend: Any) -> None:
    result = tasks.noop.enqueue()
    backdate(backend, result.id, -600)  # due in ten minutes
    code, out = check("--max-age", "0")
    assert (code, out) == (0, "tasks_check: OK backend=default queue=* waiting=none due\n")


def test_negative_thresholds_are_refused(backend: Any) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--max-backlog must be >= 0"):
        call_command("tasks_check", "--max-backlog", "-1")


def load_ready(backend: Any, size: int) -> None:
    store = backend.executions
    at = datetime(2026, 1, 1, tzinfo=UTC)
    writes = [
        Create(store.collection_name, e.id, e.to_document())
        for e in (
            TaskExecution(
                id=new_execution_id(), task_path="tests.tasks.noop", backend="default",
                queue_name="default", status=TaskResultStatus.READY, enqueued_at=at, run_after=at,
            )
            for _ in range(size)
        )
    ]  # fmt: skip
    for first in range(0, size, 500):
        store.documents.commit(writes[first : first + 500])


@pytest.mark.parametrize("size", [0, 3000])
def test_the_cost_is_bounded_by_the_threshold_not_the_collection(
    settings: Any, size: int, counts: OpCounts
) -> None:
    from django.tasks import task_backends

    from tests.settings import tasks_setting

    settings.TASKS = tasks_setting(f"mem-check-{uuid.uuid4().hex[:8]}", store="memory")
    store = task_backends["default"].executions  # type: ignore[attr-defined]
    load_ready(task_backends["default"], size)
    store.clock._learned_at = None  # as in a new process (a cron run): not synced yet
    counts.reset()
    code, _ = check("--max-backlog", "1000", "--max-age", "60")
    assert code == (1 if size else 0)
    # Firestore's time (1 get, 1 read), one capped count (1,001 entries at most: 2 reads;
    # none: billed 1) and one head query (1 read; none: billed 1).
    assert (counts.queries, counts.reads) == (2, 4 if size else 2)
    assert counts.billed_reads == (4 if size else 3)
    assert counts.writes == 0
