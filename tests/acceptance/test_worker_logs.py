"""What ``run_tasks`` prints, in a user's own project with Django's default LOGGING (finding 6).

Each record prints once, with DEBUG on (Django's own console handler prints the
``django`` loggers) and off; a failed attempt is logged with its exception.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.tasks import TaskResultStatus

from tests.acceptance.user_project import FAILURE, UserProject, stop
from tests.conftest import wait_until

DEADLINE = 120


def run_burst(project: UserProject, tmp_path: Path, backend: str, debug: bool) -> str:
    output = tmp_path / "worker.log"
    with output.open("w") as out:
        worker = project.start(
            "manage.py",
            "run_tasks",
            "--burst",
            "--backend",
            backend,
            "-v",
            "2",
            cwd=project.root,
            output=out,
            USER_PROJECT_DEBUG="1" if debug else "0",
        )
        try:
            wait_until(lambda: worker.poll() is not None, timeout=DEADLINE)
        finally:
            stop(worker)
    log = output.read_text()
    assert worker.returncode == 0, log
    return log


def matching(log: str, *parts: str) -> list[str]:
    return [line for line in log.splitlines() if all(part in line for part in parts)]


@pytest.mark.parametrize("debug", [True, False], ids=["DEBUG=True", "DEBUG=False"])
@pytest.mark.parametrize("backend", ["default", "jobs"])
def test_each_record_prints_once_and_failures_carry_the_exception(
    user_project: UserProject, tmp_path: Path, backend: str, debug: bool
) -> None:
    execution = user_project.enqueue(backend, "fails")  # two attempts, both fail
    log = run_burst(user_project, tmp_path, backend, debug)
    result = user_project.store(backend).get(execution.id)
    assert result.status == TaskResultStatus.FAILED, log
    assert result.attempts == 2

    # Django's own records (the django.tasks logger): once each, never swallowed.
    task = f"Task id={execution.id} path=mysite.tasks.fails"
    assert len(matching(log, task, "state=RUNNING")) == 2, log
    assert len(matching(log, task, "state=FAILED")) == 1, log

    # Ours: one line per failed attempt, with the exception class and message.
    attempts = matching(log, "django_tasks_fs", f"execution_id={execution.id}", FAILURE)
    assert len(matching(log, "attempt failed, will retry", f"execution_id={execution.id}")) == 1
    assert len(matching(log, "attempt failed, no retry left", f"execution_id={execution.id}")) == 1
    assert len(attempts) >= 2, log
    assert len(attempts) == len(set(attempts)), log
