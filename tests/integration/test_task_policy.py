"""Per-task policy through the backend and one attempt (in-memory store): what an
execution records, and what a failed attempt then decides."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.tasks import TaskResultStatus

from django_tasks_fs.backends import CloudRunJobsBackend, CloudTasksBackend
from django_tasks_fs.execution.attempt import Attempt
from django_tasks_fs.execution.outcome import Outcome
from django_tasks_fs.policy import Source
from tests import tasks

GOOGLE = {
    "project_id": "p",
    "location": "europe-west1",
    "base_url": "https://app.example.com/tasks/",
    "oidc_service_account": "tasks@p.iam.gserviceaccount.com",
    "cache_ttl_max_attempts": 0,
    "store": "memory",
}


def attempt(backend: Any, execution_id: str) -> Any:
    """Run the next attempt as soon as it is allowed (skips the wait of a backoff)."""
    store = backend.executions
    store._compare_and_set(execution_id, lambda current, now: current.evolve(run_after=now))
    before = store.clock.now()
    result = Attempt(backend, execution_id, worker_id="w").run()
    return Ran(result, before, store.clock.now())


class Ran:
    """An attempt's result, and the store times around it."""

    def __init__(self, result: Any, before: Any, after: Any) -> None:
        self.outcome = result.outcome
        self.execution = result.execution
        self.before, self.after = before, after

    def waits(self, delay: timedelta) -> bool:
        """Is the next attempt due ``delay`` after the failure was recorded?"""
        return self.before + delay <= self.execution.run_after <= self.after + delay


def test_the_execution_records_the_task_policy(backend: Any) -> None:
    result = tasks.fails_with.using(timeout=timedelta(seconds=20)).enqueue("connection")
    stored = backend.executions.get(result.id)
    assert (stored.max_attempts, stored.run_once, stored.timeout_seconds) == (5, False, 20)
    assert stored.retry_policy["retry_on"] == ["builtins.ConnectionError"]
    assert stored.retry_policy["sources"]["max_attempts"] == "task"
    assert stored.retry_policy["sources"]["run_once"] == "default"
    # Without a task policy: the backend's OPTIONS (tests/settings.py: max_attempts 3).
    plain = backend.executions.get(tasks.failing.enqueue().id)
    assert plain.max_attempts == 3
    assert plain.retry_policy["sources"]["max_attempts"] == "options"
    assert plain.retry_policy["sources"]["backoff"] == "options"


def test_retry_on_retries_only_the_exceptions_named(backend: Any) -> None:
    retried = tasks.fails_with.enqueue("connection")
    first = attempt(backend, retried.id)
    assert first.outcome == Outcome.RETRY
    assert first.waits(timedelta(seconds=30))  # the task's, not the backend's 0.05 s
    for kind in ("value", "refused"):  # not in retry_on; in dont_retry_on
        result = tasks.fails_with.enqueue(kind)
        assert attempt(backend, result.id).outcome == Outcome.FAILED
        result.refresh()
        assert (result.status, result.attempts) == (TaskResultStatus.FAILED, 1)


def test_the_task_max_attempts_overrides_the_backend(backend: Any) -> None:
    result = tasks.fails_with.enqueue("connection")
    outcomes = [attempt(backend, result.id).outcome for _ in range(5)]
    assert outcomes == [Outcome.RETRY] * 4 + [Outcome.FAILED]  # 5, not the backend's 3
    once = tasks.failing.using(max_attempts=1).enqueue()
    assert attempt(backend, once.id).outcome == Outcome.FAILED


def test_run_once_on_the_task(backend: Any) -> None:
    result = tasks.failing.using(run_once=True).enqueue()
    assert attempt(backend, result.id).outcome == Outcome.FAILED


def test_a_backoff_callable_sets_the_delay_and_can_stop_the_retries(backend: Any) -> None:
    result = tasks.decides_its_backoff.enqueue()
    first = attempt(backend, result.id)
    assert first.outcome == Outcome.RETRY
    assert first.waits(timedelta(seconds=7))
    # stop_after_two returns None after the second attempt: FAILED with 8 attempts left.
    assert attempt(backend, result.id).outcome == Outcome.FAILED
    result.refresh()
    assert (result.attempts, len(result.errors)) == (2, 2)


def test_the_task_own_lambda_backoff_is_used(backend: Any) -> None:
    first = attempt(backend, tasks.lambda_backoff.enqueue().id)
    assert first.outcome == Outcome.RETRY
    assert first.waits(timedelta(seconds=3))


def test_a_broken_backoff_falls_back_to_the_backend_backoff(
    backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(exception: BaseException, task_result: Any) -> Any:
        raise RuntimeError("bug in the backoff")

    result = tasks.decides_its_backoff.enqueue()
    monkeypatch.setattr(tasks, "stop_after_two", broken)  # imported by its recorded path
    first = attempt(backend, result.id)
    assert first.outcome == Outcome.RETRY  # the task is not lost
    assert first.waits(timedelta(seconds=0.05))  # retry_backoff_seconds


def test_permanent_task_error_still_fails_at_once(backend: Any) -> None:
    result = tasks.permanent.using(max_attempts=5, retry_on=(Exception,)).enqueue()
    assert attempt(backend, result.id).outcome == Outcome.FAILED


def test_an_execution_without_a_recorded_policy_keeps_the_backend_backoff(backend: Any) -> None:
    result = tasks.failing.enqueue()
    backend.executions._compare_and_set(result.id, lambda c, now: c.evolve(retry_policy={}))
    first = attempt(backend, result.id)
    assert first.outcome == Outcome.RETRY
    assert first.waits(timedelta(seconds=0.05))


# -- precedence on Google Cloud (no I/O: the platform's limit is stubbed) ----------------------


def cloud(cls: type, **options: Any) -> Any:
    backend = cls("policy", {"OPTIONS": {**GOOGLE, **options}})
    backend.platform_max_attempts = lambda queue: 4
    return backend


def test_google_cloud_defaults_come_from_the_platform_unless_options_set_them() -> None:
    defaults = cloud(CloudTasksBackend).policy_defaults("default")
    assert defaults.max_attempts == (4, Source.PLATFORM)
    assert defaults.backoff == (None, Source.PLATFORM)
    assert defaults.schedules_retries
    given = cloud(CloudTasksBackend, max_attempts=6, retry_backoff_seconds=2)
    defaults = given.policy_defaults("default")
    assert defaults.max_attempts == (6, Source.OPTIONS)
    assert defaults.backoff[1] == Source.OPTIONS
    assert defaults.backoff[0].base == timedelta(seconds=2)
    # Cloud Run Jobs cannot send a run due later: no backoff of ours by default.
    assert not cloud(CloudRunJobsBackend).policy_defaults("default").schedules_retries
