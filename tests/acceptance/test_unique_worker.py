"""Unique enqueue with the local worker (``run_tasks`` as a subprocess, on the emulator)."""

from __future__ import annotations

from pathlib import Path

from django.tasks import TaskResultStatus

from tests import tasks
from tests.acceptance.test_worker import lines, run_worker


def test_the_worker_runs_one_execution_per_key(tasks_project: str, tmp_path: Path) -> None:
    log = tmp_path / "ran.txt"
    results = [tasks.sync_user.enqueue(i % 3, path=str(log)) for i in range(12)]
    first = {r.args[0]: r.id for r in results[:3]}
    assert [r.id for r in results] == [first[i % 3] for i in range(12)]
    done = run_worker(tasks_project, "--burst")
    assert done.returncode == 0, done.stdout
    assert sorted(lines(log)) == ["sync 0", "sync 1", "sync 2"]
    for result in results[:3]:
        result.refresh()
        assert result.status == TaskResultStatus.SUCCESSFUL

    again = tasks.sync_user.enqueue(0, path=str(log))  # finished: the key is free again
    assert again.id != first[0]
    assert run_worker(tasks_project, "--burst").returncode == 0
    assert sorted(lines(log)) == ["sync 0", "sync 0", "sync 1", "sync 2"]
