"""The dashboard's figures (store/executions/stats.py) on both stores: capped counts,
the oldest due READY, the last finished with their durations, per queue and per backend."""

from __future__ import annotations

from datetime import timedelta

from django.tasks import TaskResultStatus

from django_tasks_fs.store import DispatchState, ExecutionStore
from tests.conftest import ExecutionFactory

OK, FAILED = TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED
READY, RUNNING = TaskResultStatus.READY, TaskResultStatus.RUNNING


def test_counts_per_queue_and_per_backend_stop_at_the_limit(
    executions: ExecutionStore, make_execution: ExecutionFactory
) -> None:
    for queue in ("a", "a", "a", "b"):
        make_execution(queue_name=queue)
    make_execution(queue_name="a", backend="other")
    now = executions.clock.now()
    make_execution(
        queue_name="b",
        status=TaskResultStatus.RUNNING,
        lease_owner="w",
        lease_expires_at=now - timedelta(seconds=5),
    )
    make_execution(
        status=TaskResultStatus.RUNNING, lease_owner="w", lease_expires_at=now + timedelta(hours=1)
    )

    assert executions.status_count(READY, backend="default", queue_name="a") == 3
    assert executions.status_count(READY, backend="default", queue_name="a", limit=2) == 2
    assert executions.status_count(READY, backend="default", limit=None) == 4
    assert executions.status_count(RUNNING, backend="default", queue_name="b") == 1
    assert executions.status_count(RUNNING, backend="default") == 2
    assert executions.expired_leases_count(backend="default", now=now) == 1
    assert executions.expired_leases_count(backend="default", now=now + timedelta(hours=2)) == 2


def test_the_oldest_due_ready_execution(
    executions: ExecutionStore, make_execution: ExecutionFactory
) -> None:
    now = executions.clock.now()
    assert executions.oldest_ready(backend="default", now=now) is None
    older = make_execution(run_after=now - timedelta(minutes=5), priority=-10)
    make_execution(run_after=now - timedelta(minutes=1), priority=10)
    make_execution(run_after=now + timedelta(minutes=1))  # not due
    emails = make_execution(queue_name="emails", run_after=now - timedelta(minutes=2))

    found = executions.oldest_ready(backend="default", queue_name="default", now=now)
    assert found is not None
    assert found.id == older.id
    found = executions.oldest_ready(backend="default", queue_name="emails", now=now)
    assert found is not None
    assert found.id == emails.id
    found = executions.oldest_ready(backend="default", now=now)
    assert found is not None
    assert found.id == older.id
    assert executions.oldest_ready(backend="default", now=now - timedelta(hours=1)) is None


def test_finished_since_and_the_last_durations(
    executions: ExecutionStore, make_execution: ExecutionFactory
) -> None:
    now = executions.clock.now()

    def finish(status: TaskResultStatus, ago: timedelta, seconds: float, **extra: object) -> str:
        end = now - ago
        start = end - timedelta(seconds=seconds)
        fields = {"started_at": start, "last_attempted_at": start, "finished_at": end}
        return make_execution(status=status, **{**fields, **extra}).id

    finish(OK, timedelta(minutes=1), 1.5)
    finish(OK, timedelta(minutes=30), 3.0, task_path="tests.tasks.echo")
    finish(FAILED, timedelta(minutes=10), 0.5)
    finish(OK, timedelta(hours=5), 2.0, queue_name="emails")
    make_execution(status=FAILED, finished_at=now - timedelta(minutes=2))  # never started

    hour = now - timedelta(hours=1)
    assert executions.finished_since(backend="default", status=OK, since=hour) == 2
    assert executions.finished_since(backend="default", status=OK, since=hour, limit=1) == 1
    assert executions.finished_since(backend="default", status=FAILED, since=hour) == 2
    day = now - timedelta(days=1)
    assert executions.finished_since(backend="default", status=OK, since=day) == 3
    assert (
        executions.finished_since(backend="default", status=OK, since=day, queue_name="emails") == 1
    )

    runs = executions.recent_durations(backend="default", queue_name="default", limit=3)
    # Newest first; the three newest include the one that never started (left out).
    assert [(r.task_path, r.status, r.seconds) for r in runs] == [
        ("tests.tasks.noop", OK, 1.5),
        ("tests.tasks.noop", FAILED, 0.5),
    ]
    assert runs[0].finished_at == now - timedelta(minutes=1)
    every = executions.recent_durations(backend="default", limit=10)
    assert len(every) == 4


def test_stale_pending_count(executions: ExecutionStore, make_execution: ExecutionFactory) -> None:
    now = executions.clock.now()
    make_execution(dispatch_state=DispatchState.PENDING, enqueued_at=now - timedelta(minutes=5))
    make_execution(dispatch_state=DispatchState.PENDING, enqueued_at=now)
    make_execution(dispatch_state=DispatchState.DISPATCHED, enqueued_at=now - timedelta(hours=1))
    older_than = now - timedelta(minutes=1)
    assert executions.stale_pending_count(backend="default", older_than=older_than) == 1
    assert len(executions.pending_dispatch(backend="default", older_than=older_than)) == 1
