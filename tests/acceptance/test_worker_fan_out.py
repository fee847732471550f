"""The local worker's ``cloud_run_jobs`` mode runs what it hands out at once as a Cloud
Run fan-out: one process per execution, each ``execute_task --fan-out`` taking its
member by ``CLOUD_RUN_TASK_INDEX`` of one shared ``CLOUD_RUN_EXECUTION``."""

from __future__ import annotations

import subprocess
from collections import defaultdict
from pathlib import Path

from django.tasks import TaskResultStatus

from django_tasks_fs import enqueue_many
from tests import tasks
from tests.conftest import start_django

TIMEOUT = 120


def test_the_jobs_mode_runs_a_batch_as_one_fan_out(tasks_project: str, tmp_path: Path) -> None:
    log = tmp_path / "ran.txt"
    tokens = [f"t{i}" for i in range(5)]
    results = enqueue_many(
        tasks.record_task_env.using(backend="jobs"), [((str(log), t), {}) for t in tokens]
    )
    worker = start_django(
        tasks_project,
        "run_tasks",
        "--burst",
        "--backend",
        "jobs",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out, _ = worker.communicate(timeout=TIMEOUT)
    assert worker.returncode == 0, out

    records = [line.split() for line in log.read_text().splitlines()]
    assert sorted(r[0] for r in records) == tokens  # each member ran once
    runs: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for _, index, count, run in records:
        runs[run].append((int(index), int(count)))
    for tasks_of_run in runs.values():  # task i of n, each index once per job execution
        (count,) = {c for _, c in tasks_of_run}
        assert sorted(i for i, _ in tasks_of_run) == list(range(count))
    # max_workers is 2: the first hand-out started two members in one job execution.
    assert max(len(t) for t in runs.values()) == 2
    for result in results:
        result.refresh()
        assert result.status == TaskResultStatus.SUCCESSFUL
