"""ProcessBackend against the emulator, in-process: enqueue, results, one attempt at a time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.tasks import TaskResultStatus, task_backends
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
from django.tasks.signals import task_enqueued, task_finished, task_started
from django.utils import timezone

from django_tasks_fs import cancel_task
from django_tasks_fs.exceptions import NotJSONSerializable, PayloadTooLarge
from django_tasks_fs.execution.attempt import Attempt
from django_tasks_fs.execution.outcome import Outcome
from django_tasks_fs.store import CancelOutcome
from django_tasks_fs.store.errors import ClaimReason
from django_tasks_fs.tasks import Task
from tests import tasks


def run_one(backend: Any, execution_id: str, worker: str = "w") -> Any:
    return Attempt(backend, execution_id, worker_id=worker).run()


def test_enqueue_returns_a_ready_result_and_writes_the_document(backend: Any) -> None:
    result = tasks.echo.enqueue(1, [2, [3]], key={"a": 2**70})
    assert result.status == TaskResultStatus.READY
    assert result.backend == "default"
    assert result.attempts == 0
    assert result.enqueued_at is not None
    stored = backend.executions.get(result.id)
    assert stored.task_path == "tests.tasks.echo"
    assert stored.args == [1, [2, [3]]]
    assert stored.kwargs == {"key": {"a": 2**70}}
    assert stored.max_attempts == 3
    assert stored.run_after == stored.enqueued_at


def test_get_result_round_trip_and_unknown_ids(backend: Any) -> None:
    result = tasks.noop.enqueue()
    fetched = tasks.noop.get_result(result.id)
    assert fetched.id == result.id
    assert fetched.status == TaskResultStatus.READY
    with pytest.raises(TaskResultDoesNotExist):
        backend.get_result("does-not-exist")
    with pytest.raises(TaskResultDoesNotExist):
        task_backends["jobs"].get_result(result.id)  # another backend's store
    for impossible in ("", "a/b", "..", "__x__", "x" * 1501):  # not Firestore ids: no request
        with pytest.raises(TaskResultDoesNotExist):
            backend.get_result(impossible)


def test_success_updates_the_result(backend: Any) -> None:
    result = tasks.echo.enqueue("x", n=1)
    assert run_one(backend, result.id).outcome == Outcome.SUCCEEDED
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == {"args": ["x"], "kwargs": {"n": 1}}
    assert result.attempts == 1
    assert result.worker_ids == ["w"]
    assert result.started_at is not None
    assert result.finished_at is not None


def test_retries_then_fails_after_max_attempts(backend: Any) -> None:
    result = tasks.failing.enqueue("nope")
    outcomes = []
    for _ in range(3):
        attempt = Attempt(backend, result.id, worker_id="w", known=None)
        # Skip the local backoff: claim as soon as it is due.
        stored = backend.executions.get(result.id)
        if stored.run_after > backend.executions.clock.now():
            backend.executions._compare_and_set(result.id, lambda c, now: c.evolve(run_after=now))
        outcomes.append(attempt.run().outcome)
    assert outcomes == [Outcome.RETRY, Outcome.RETRY, Outcome.FAILED]
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.attempts == 3
    assert [e.exception_class_path for e in result.errors] == ["builtins.ValueError"] * 3
    assert "ValueError: nope" in result.errors[-1].traceback
    refused = run_one(backend, result.id)
    assert refused.outcome == Outcome.REFUSED
    assert refused.reason == ClaimReason.FINISHED


def test_retry_backoff_is_exponential(backend: Any) -> None:
    assert backend.retry_delay(1) == timedelta(seconds=0.05)
    assert backend.retry_delay(2) == timedelta(seconds=0.1)
    assert backend.retry_delay(10) == timedelta(seconds=0.2)  # capped


def test_permanent_error_fails_at_once(backend: Any) -> None:
    result = tasks.permanent.enqueue()
    assert run_one(backend, result.id).outcome == Outcome.FAILED
    result.refresh()
    assert result.attempts == 1
    assert result.errors[0].exception_class_path == "django_tasks_fs.exceptions.PermanentTaskError"


def test_context_gets_the_attempt_number(backend: Any) -> None:
    result = tasks.flaky.enqueue(fail_times=1)
    assert run_one(backend, result.id).outcome == Outcome.RETRY
    backend.executions._compare_and_set(result.id, lambda c, now: c.evolve(run_after=now))
    assert run_one(backend, result.id).outcome == Outcome.SUCCEEDED
    result.refresh()
    assert result.return_value == 2
    assert result.attempts == 2


def test_async_task(backend: Any) -> None:
    result = tasks.async_add.enqueue(2, 3)
    assert run_one(backend, result.id).outcome == Outcome.SUCCEEDED
    result.refresh()
    assert result.return_value == 5


def test_unimportable_task_is_failed_not_left_running(backend: Any) -> None:
    result = tasks.noop.enqueue()
    backend.executions._compare_and_set(
        result.id, lambda c, now: c.evolve(task_path="tests.gone.task")
    )
    assert run_one(backend, result.id).outcome == Outcome.FAILED
    stored = backend.executions.get(result.id)
    assert stored.status == TaskResultStatus.FAILED
    assert stored.lease_owner is None
    assert stored.errors[0].exception_class_path == "django_tasks_fs.exceptions.TaskNotImportable"


def test_non_json_return_value_fails_clearly(backend: Any) -> None:
    result = tasks.returns_set.enqueue()
    assert run_one(backend, result.id).outcome == Outcome.FAILED
    result.refresh()
    assert result.errors[0].exception_class_path == "django_tasks_fs.exceptions.NotJSONSerializable"
    assert "return value: value of type set" in result.errors[0].traceback


def test_run_once_never_starts_a_second_attempt(tasks_project: str) -> None:
    once = task_backends["once"]
    result = tasks.failing.using(backend="once").enqueue()
    assert run_one(once, result.id).outcome == Outcome.FAILED  # retryable, but run_once
    stored = once.executions.get(result.id)
    assert stored.status == TaskResultStatus.FAILED
    assert stored.attempts == 1


def test_bad_arguments_are_refused_at_enqueue_and_nothing_is_written(backend: Any) -> None:
    with pytest.raises(NotJSONSerializable, match=r"args\[0\]: value of type object"):
        tasks.echo.enqueue(object())
    with pytest.raises(PayloadTooLarge, match="too large"):
        tasks.echo.enqueue("x" * (1024 * 1024 + 1))
    with pytest.raises(InvalidTask):  # both are Django's InvalidTask
        tasks.echo.enqueue(float("nan"))
    assert backend.executions.count() == 0


def test_validate_task(backend: Any) -> None:
    with pytest.raises(InvalidTask, match="Queue 'nope' is not valid"):
        tasks.noop.using(queue_name="nope")
    with pytest.raises(InvalidTask, match="priority must be a whole number"):
        tasks.noop.using(priority=101)
    with pytest.raises(InvalidTask, match="run_after must be an aware datetime"):
        tasks.noop.using(run_after=timezone.now().replace(tzinfo=None))
    with pytest.raises(InvalidTask, match="does not support run_after"):
        tasks.noop.using(backend="jobs", run_after=timezone.now())
    with pytest.raises(
        InvalidTask, match="Task timeout must be a timedelta between 0:00:15 and 0:30:00"
    ):
        Task(func=tasks.noop.func, timeout=timedelta(seconds=1))
    assert Task(func=tasks.noop.func, backend="jobs", timeout=timedelta(seconds=1)).timeout


def test_deferred_task_waits(backend: Any) -> None:
    later = timezone.now() + timedelta(hours=1)
    result = tasks.noop.using(run_after=later).enqueue()
    refused = run_one(backend, result.id)
    assert refused.outcome == Outcome.REFUSED
    assert refused.reason == ClaimReason.NOT_DUE
    assert backend.executions.ready(backend="default") == []


def test_priority_orders_the_ready_query(backend: Any) -> None:
    low = tasks.noop.using(priority=-10).enqueue()
    high = tasks.noop.using(priority=50).enqueue()
    mid = tasks.noop.enqueue()
    assert [e.id for e in backend.executions.ready(backend="default")] == [high.id, mid.id, low.id]


def test_signals(backend: Any) -> None:
    seen: list[tuple[str, str]] = []

    def on(name: str) -> Any:
        def receiver(sender: Any, task_result: Any, **kwargs: Any) -> None:
            seen.append((name, str(task_result.status)))

        return receiver

    receivers = [on("enqueued"), on("started"), on("finished")]
    task_enqueued.connect(receivers[0])
    task_started.connect(receivers[1])
    task_finished.connect(receivers[2])
    try:
        result = tasks.noop.enqueue()
        run_one(backend, result.id)
    finally:
        task_enqueued.disconnect(receivers[0])
        task_started.disconnect(receivers[1])
        task_finished.disconnect(receivers[2])
    assert seen == [("enqueued", "READY"), ("started", "RUNNING"), ("finished", "SUCCESSFUL")]


def test_cancel_task_api(backend: Any) -> None:
    ready = tasks.noop.enqueue()
    assert cancel_task(ready) == CancelOutcome.CANCELLED
    assert cancel_task(ready.id) == CancelOutcome.ALREADY_FINISHED
    ready.refresh()
    assert ready.status == TaskResultStatus.FAILED
    assert ready.errors[0].exception_class_path == "django_tasks_fs.exceptions.TaskCancelledError"
    assert run_one(backend, ready.id).reason == ClaimReason.FINISHED

    done = tasks.noop.enqueue()
    run_one(backend, done.id)
    assert cancel_task(done) == CancelOutcome.ALREADY_FINISHED
    done.refresh()
    assert done.status == TaskResultStatus.SUCCESSFUL

    with pytest.raises(NotImplementedError, match="does not support forceful cancellation"):
        cancel_task(tasks.noop.enqueue(), force=True)
    with pytest.raises(TaskResultDoesNotExist):
        cancel_task("unknown-id")


def test_async_enqueue_and_get_result(backend: Any) -> None:
    import asyncio

    async def go() -> tuple[Any, Any]:
        result = await tasks.echo.aenqueue(1, k="v")
        fetched = await tasks.echo.aget_result(result.id)
        return result, fetched

    result, fetched = asyncio.run(go())
    assert fetched.id == result.id
    assert fetched.status == TaskResultStatus.READY
    assert fetched.args == [1]
    assert fetched.kwargs == {"k": "v"}


def test_without_heartbeats_the_lease_still_excludes_others(
    tasks_project: str, settings: Any
) -> None:
    settings.TASKS["default"]["OPTIONS"] = {
        **settings.TASKS["default"]["OPTIONS"],
        "heartbeat_enabled": False,
    }
    backend: Any = task_backends["default"]
    assert backend.config.heartbeat_enabled is False
    result = tasks.claim_myself.enqueue()
    assert run_one(backend, result.id).outcome == Outcome.SUCCEEDED
    result.refresh()
    assert result.return_value == "lease_held"
