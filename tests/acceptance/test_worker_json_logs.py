"""``DJANGO_TASKS_FS_LOG_FORMAT=json``: every record of a worker run, its processes'
included, is one Cloud Logging JSON line carrying the execution's attributes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.tasks import TaskResultStatus

from tests.acceptance.user_project import UserProject, stop
from tests.conftest import wait_until

DEADLINE = 120
IDENTITY = ("execution_id", "task_path", "backend", "queue", "attempt", "worker_id")


def run_burst(project: UserProject, tmp_path: Path, backend: str) -> list[dict[str, Any]]:
    output = tmp_path / "worker.log"
    with output.open("w") as out:
        worker = project.start(
            "manage.py", "run_tasks", "--burst", "--backend", backend, "-v", "2",
            cwd=project.root, output=out, USER_PROJECT_DEBUG="0",
            DJANGO_TASKS_FS_LOG_FORMAT="json",
        )  # fmt: skip
        try:
            wait_until(lambda: worker.poll() is not None, timeout=DEADLINE)
        finally:
            stop(worker)
    text = output.read_text()
    assert worker.returncode == 0, text
    # The commands' own summaries go to stdout as before; every log record is JSON.
    summaries = ("run_tasks: ", "execute_task ")
    records = [json.loads(line) for line in text.splitlines() if not line.startswith(summaries)]
    assert records, text
    return records


@pytest.mark.parametrize("backend", ["default", "jobs"])
def test_every_record_carries_the_attributes(
    user_project: UserProject, tmp_path: Path, backend: str
) -> None:
    fails = user_project.enqueue(backend, "fails")  # two attempts, both fail
    succeeds = user_project.enqueue(backend, "succeeds")
    records = run_burst(user_project, tmp_path, backend)
    assert user_project.store(backend).get(fails.id).status == TaskResultStatus.FAILED

    for record in records:
        assert {"severity", "message", "time", "logger"} <= record.keys(), record
        if record["logger"].startswith("google.") and record["message"].endswith("exiting"):
            # The Google clients' own threads carry the worker's id while it runs; the
            # listener's stream thread (which older google-api-core logs at INFO as it
            # exits) can end after the worker's run did.
            continue
        assert record.get("worker_id"), record  # the worker's, or the process's that ran it
    about = [r for r in records if "execution_id=" in r["message"]]
    assert {r["execution_id"] for r in about} == {fails.id, succeeds.id}
    for record in about:
        assert all(record.get(name) is not None for name in IDENTITY), record
        assert record["backend"] == backend
        assert record["queue"] == "default"

    failures = [r for r in about if r["message"].startswith("attempt failed")]
    assert [(r["outcome"], r["attempt"]) for r in failures] == [("retry", 1), ("failed", 2)]
    assert all(r["error_class"] == "builtins.ValueError" for r in failures)
    assert all(r["duration"] >= 0 for r in failures)
    assert all(r["severity"] in {"WARNING", "ERROR"} for r in failures)

    finished = [r for r in about if r["message"].startswith("finished ")]
    assert {r["execution_id"] for r in finished} == {fails.id, succeeds.id}
    assert all(r["outcome"] for r in finished)
    if backend == "default":  # warm processes report the duration; a job its exit status
        done = next(r for r in finished if r["execution_id"] == succeeds.id)
        assert done["outcome"] == "succeeded"
        assert done["duration"] >= 0
        assert done["task_path"] == "mysite.tasks.succeeds"
