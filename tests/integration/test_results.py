"""TaskResult built from execution documents."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.tasks import TaskResultStatus
from django.tasks.base import TaskError

from django_tasks_fs.results import TaskNotImportable, to_task_result
from django_tasks_fs.store import ErrorEntry, ExecutionStore
from tests import tasks
from tests.conftest import ExecutionFactory

LEASE = timedelta(seconds=60)


def test_ready_result(make_execution: ExecutionFactory) -> None:
    execution = make_execution(task_path="tests.tasks.echo", args=[1, [2]], kwargs={"a": None})
    result = to_task_result(execution)
    assert result.id == execution.id
    assert result.status == TaskResultStatus.READY
    assert result.task.func is tasks.echo.func
    assert result.task.run_after is None  # not deferred
    assert result.args == [1, [2]]
    assert result.kwargs == {"a": None}
    assert result.backend == "default"
    assert result.enqueued_at == execution.enqueued_at
    assert result.started_at is None
    assert result.attempts == 0
    assert result.errors == []
    with pytest.raises(ValueError, match="not finished"):
        _ = result.return_value


def test_finished_results_after_many_attempts(
    executions: ExecutionStore, make_execution: ExecutionFactory
) -> None:
    execution = make_execution(task_path="tests.tasks.echo", max_attempts=None)
    error = ErrorEntry(exception_class_path="builtins.ValueError", traceback="tb")
    limit = executions.settings.max_history_entries
    for i in range(limit + 2):
        lease = executions.claim(execution.id, worker_id=f"w{i}", lease_duration=LEASE)
        executions.fail(lease, error, retryable=True)
    lease = executions.claim(execution.id, worker_id="last", lease_duration=LEASE)
    done = executions.succeed(lease, {"x": [1, [2]]})

    result = to_task_result(done)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == {"x": [1, [2]]}
    # Django derives attempts from len(worker_ids); ours stays right past the history cap.
    assert result.attempts == limit + 3
    assert len(result.worker_ids) == limit
    assert result.worker_ids[-1] == "last"
    assert result.errors[0] == TaskError(exception_class_path="builtins.ValueError", traceback="tb")
    assert result.errors[0].exception_class is ValueError
    assert result.finished_at == done.finished_at
    assert result.last_attempted_at is not None
    assert result.started_at is not None
    assert result.started_at < result.last_attempted_at


def test_failed_result_raises_on_return_value(
    executions: ExecutionStore, make_execution: ExecutionFactory
) -> None:
    execution = make_execution(max_attempts=1)
    lease = executions.claim(execution.id, worker_id="w", lease_duration=LEASE)
    failed = executions.fail(
        lease, ErrorEntry(exception_class_path="builtins.KeyError", traceback="t"), retryable=True
    )
    result = to_task_result(failed)
    assert result.status == TaskResultStatus.FAILED
    assert result.is_finished
    with pytest.raises(ValueError, match="Task failed"):
        _ = result.return_value


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("tests.tasks.missing", r"'tests.tasks.missing' cannot be imported"),
        ("no_such_module.task", r"'no_such_module.task' cannot be imported"),
        ("tests.conftest.wait_until", r"'tests.conftest.wait_until' is a function, not a @task"),
    ],
)
def test_unimportable_task_paths(make_execution: ExecutionFactory, path: str, message: str) -> None:
    with pytest.raises(TaskNotImportable, match=message):
        to_task_result(make_execution(task_path=path))
