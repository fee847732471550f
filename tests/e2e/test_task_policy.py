"""A task's retry policy on Cloud Tasks, through the emulators: it overrides the queue's
retry config (each retry is a new Cloud Task due after the task's backoff)."""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.tasks import TaskResultStatus, task_backends

from tests import tasks
from tests.conftest import wait_until


def started(log: Path) -> list[float]:
    """When each attempt started (time.time(), written by tasks.timed_failure)."""
    return [float(line) for line in log.read_text().splitlines()] if log.exists() else []


def finished(result: Any) -> bool:
    result.refresh()
    return bool(result.is_finished)


def test_a_task_policy_overrides_the_queue_retry_config(cloud_project: str, tmp_path: Path) -> None:
    # The queue (tests/factories.py) allows 3 attempts, 0.1 s to 0.3 s apart.
    log = tmp_path / "started.txt"
    declared = tasks.timed_failure.using(
        backend="cloud", max_attempts=5, backoff=timedelta(seconds=1)
    )
    result = declared.enqueue(str(log))
    wait_until(lambda: finished(result), timeout=60)
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
