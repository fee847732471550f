"""A task's retry policy through the local worker (``run_tasks``, the emulator): its
max_attempts and backoff override the backend's OPTIONS."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.tasks import TaskResultStatus

from tests import tasks
from tests.conftest import start_django, wait_until


def finished(result: Any) -> bool:
    result.refresh()
    return bool(result.is_finished)


def test_the_worker_follows_the_task_policy(tasks_project: str, tmp_path: Path) -> None:
    # The backend (tests/settings.py): 3 attempts, 0.05 s to 0.2 s apart.
    log = tmp_path / "started.txt"
    result = tasks.timed_failure.using(max_attempts=4, backoff=timedelta(seconds=1)).enqueue(
        str(log)
    )
    filtered = tasks.fails_with.enqueue("value")  # not in its retry_on: one attempt
    worker = start_django(
        tasks_project,
        "run_tasks",
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until(lambda: finished(result) and finished(filtered), timeout=60)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        out, _ = worker.communicate(timeout=60)
    assert worker.returncode == 0, out
    assert (result.status, result.attempts) == (TaskResultStatus.FAILED, 4)
    times = [float(line) for line in log.read_text().splitlines()]
    assert len(times) == 4
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.9
    assert (filtered.status, filtered.attempts) == (TaskResultStatus.FAILED, 1)
