"""A task's retry policy on Cloud Tasks, through the emulators: it overrides the queue's
retry config (each retry is a new Cloud Task due after the task's backoff)."""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.tasks import TaskResultStatus, task_backends
from django.utils import timezone

from django_tasks_fs.backends import CloudTasksBackend
from django_tasks_fs.dispatching import sweep
from django_tasks_fs.gcp.clients import tasks_client
from django_tasks_fs.gcp.errors import GoogleCloudError
from django_tasks_fs.store.ops.counting import OpCounts
from tests import tasks
from tests.conftest import wait_until
from tests.factories import LOCATION


def started(log: Path) -> list[float]:
    """When each attempt started (time.time(), written by tasks.timed_failure)."""
    return [float(line) for line in log.read_text().splitlines()] if log.exists() else []


def finished(result: Any) -> bool:
    result.refresh()
    return bool(result.is_finished)


def test_a_task_policy_overrides_the_queue_retry_config(
    cloud_project: str, tmp_path: Path, counts: OpCounts
) -> None:
    # The queue (tests/factories.py) allows 3 attempts, 0.1 s to 0.3 s apart.
    log = tmp_path / "started.txt"
    declared = tasks.timed_failure.using(
        backend="cloud", max_attempts=5, backoff=timedelta(seconds=1)
    )
    result = declared.enqueue(str(log))
    wait_until(lambda: finished(result), timeout=60)
    # A rescheduled retry writes nothing of its own: the enqueue, then per attempt
    # its claim and its failure (as a retry by the queue costs). The live server's
    # thread counts its last write after the commit returns, which the poll above may
    # see first: wait for the count to arrive, then check nothing more was written.
    expected = 1 + 5 * 2
    wait_until(lambda: counts.writes >= expected, timeout=10)
    assert (counts.writes, counts.conflicts) == (expected, 0)
    assert result.status == TaskResultStatus.FAILED
    assert result.attempts == 5  # the task's budget, not the queue's 3
    times = started(log)
    assert len(times) == 5
    # Each retry waited the task's backoff, not the queue's (0.3 s at most).
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.9
    stored = task_backends["cloud"].executions.get(result.id)  # type: ignore[attr-defined]
    # The last attempt came from the Cloud Task the fourth failure created.
    assert stored.cloud_task_name.endswith(f"/tasks/{result.id}-a4")
    assert stored.retry_policy["sources"]["max_attempts"] == "task"


def test_retry_on_stops_the_queue_from_retrying(cloud_project: str) -> None:
    result = tasks.fails_with.using(backend="cloud").enqueue("value")  # not in retry_on
    wait_until(lambda: finished(result), timeout=30)
    assert (result.status, result.attempts) == (TaskResultStatus.FAILED, 1)


def test_a_repeated_reschedule_is_deduplicated(cloud_project: str, tmp_path: Path) -> None:
    cloud: Any = task_backends["cloud"]
    later = timezone.now() + timedelta(hours=1)  # nothing is delivered during the test
    result = tasks.record.using(backend="cloud", run_after=later).enqueue(str(tmp_path), "x")
    failed_once = cloud.executions.get(result.id).evolve(attempts=1)
    assert cloud.reschedule(failed_once)
    assert cloud.reschedule(failed_once)  # ALREADY_EXISTS: the same Cloud Task
    queue = f"projects/{cloud_project}/locations/{LOCATION}/queues/default"
    names = sorted(t.name for t in tasks_client(cloud.emulator).list_tasks(parent=queue))
    assert names == [f"{queue}/tasks/{result.id}", f"{queue}/tasks/{result.id}-a1"]


def test_a_failed_reschedule_falls_back_to_the_queue_and_the_sweeper(
    cloud_project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def unavailable(self: Any, execution: Any) -> bool:
        calls.append(execution.attempts)
        raise GoogleCloudError("Cloud Tasks is unavailable")

    monkeypatch.setattr(CloudTasksBackend, "reschedule", unavailable)
    cloud: Any = task_backends["cloud"]
    declared = tasks.failing.using(backend="cloud", max_attempts=2, backoff=0.2)
    result = declared.enqueue("x")
    queue = f"projects/{cloud_project}/locations/{LOCATION}/queues/default"

    def settled() -> bool:
        # Finished, or the queue gave up on its Cloud Task (its deliveries all came
        # before run_after): then the sweeper's re-dispatch must finish it.
        return finished(result) or not list(tasks_client(cloud.emulator).list_tasks(parent=queue))

    wait_until(settled, timeout=30)
    if not finished(result):
        sweep(cloud, grace=timedelta(0), stale=timedelta(0))
        wait_until(lambda: finished(result), timeout=30)
    assert (result.status, result.attempts) == (TaskResultStatus.FAILED, 2)
    assert calls == [1]  # answered 500 after attempt 1; attempt 2 was the last
