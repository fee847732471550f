"""How ``run_tasks`` starts its child processes, in a user's own project (finding 9).

Children must depend neither on the launching script (no ``__main__`` guard) nor on
the working directory, and a child that cannot start must be backed off, reported,
and its executions failed, instead of respawned in a loop.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.tasks import TaskResultStatus

from tests.acceptance.user_project import REFUSAL, UserProject, stop
from tests.conftest import wait_until

#: Generous: a worker on a loaded 2-core machine; the tests poll, never sleep.
DEADLINE = 120


def finished(project: UserProject, backend: str, execution_id: str) -> bool:
    return project.store(backend).get(execution_id).is_finished


@pytest.mark.parametrize("backend", ["default", "jobs"])
def test_a_launcher_script_without_main_guard(
    user_project: UserProject, tmp_path: Path, backend: str
) -> None:
    """(a) ``call_command("run_tasks")`` at the top level of a script, children included."""
    execution = user_project.enqueue(backend, "succeeds")
    output = tmp_path / "worker.log"
    with output.open("w") as out:
        worker = user_project.start(
            "run_worker.py", "--burst", "--backend", backend, cwd=tmp_path, output=out
        )
        try:
            wait_until(lambda: worker.poll() is not None, timeout=DEADLINE)
        finally:
            stop(worker)
    log = output.read_text()
    assert worker.returncode == 0, log
    assert "bootstrapping phase" not in log
    assert user_project.store(backend).get(execution.id).status == TaskResultStatus.SUCCESSFUL


@pytest.mark.parametrize("backend", ["default", "jobs"])
def test_children_get_the_import_path_of_manage_py_from_another_cwd(
    user_project: UserProject, tmp_path: Path, backend: str
) -> None:
    """(b) The project is on sys.path only because manage.py's folder is; the worker runs
    from somewhere else, so a child relying on its cwd cannot import mysite.settings."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    execution = user_project.enqueue(backend, "python_path")
    output = tmp_path / "worker.log"
    with output.open("w") as out:
        worker = user_project.start(
            "manage.py", "run_tasks", "--burst", "--backend", backend, cwd=elsewhere, output=out
        )
        try:
            wait_until(lambda: worker.poll() is not None, timeout=DEADLINE)
        finally:
            stop(worker)
    log = output.read_text()
    assert worker.returncode == 0, log
    assert "ModuleNotFoundError" not in log
    result = user_project.store(backend).get(execution.id)
    assert result.status == TaskResultStatus.SUCCESSFUL
    # Task code sees the worker's environment, not the children's import path.
    assert result.return_value == user_project.env().get("PYTHONPATH")


@pytest.mark.parametrize("backend", ["default", "jobs"])
def test_a_child_that_cannot_start_is_backed_off_reported_and_its_execution_failed(
    user_project: UserProject, tmp_path: Path, backend: str
) -> None:
    """(c) Every child refuses to load the settings: a bounded number of starts, each
    reported with the child's own error, then the execution FAILED and the worker exits."""
    execution = user_project.enqueue(backend, "succeeds")
    output = tmp_path / "worker.log"
    with output.open("w") as out:
        worker = user_project.start(
            "manage.py",
            "run_tasks",
            "--burst",
            "--backend",
            backend,
            cwd=tmp_path,
            output=out,
            USER_PROJECT_BREAK_CHILDREN="always",
            USER_PROJECT_STARTS=str(user_project.starts),
        )
        try:
            wait_until(lambda: finished(user_project, backend, execution.id), timeout=DEADLINE)
            wait_until(lambda: worker.poll() is not None, timeout=DEADLINE)
        finally:
            stop(worker)
    log = output.read_text()
    from django_tasks_fs.worker.startup import MAX_FAILED_STARTS

    assert len(starts(user_project)) == MAX_FAILED_STARTS, log
    kind = {"default": "worker process", "jobs": "execute_task process"}[backend]
    failed_starts = [line for line in log.splitlines() if f"{kind} did not start" in line]
    assert len(failed_starts) == MAX_FAILED_STARTS, log
    assert f"failed_starts={MAX_FAILED_STARTS}/{MAX_FAILED_STARTS}" in failed_starts[-1]
    assert log.count(REFUSAL) >= MAX_FAILED_STARTS  # each child's own error output
    assert worker.returncode == 1, log
    gave_up = f"CommandError: {kind}es could not start: {MAX_FAILED_STARTS} failed starts in a row"
    assert gave_up in log

    result = user_project.store(backend).get(execution.id)
    assert result.status == TaskResultStatus.FAILED
    assert result.attempts == 1
    error = result.errors[-1]
    assert error.exception_class_path == "django_tasks_fs.exceptions.WorkerStartError"
    assert REFUSAL in error.traceback
    assert f"{MAX_FAILED_STARTS} failed starts in a row" in error.traceback


def test_a_child_that_starts_after_failing_resets_the_backoff(
    user_project: UserProject, tmp_path: Path
) -> None:
    """Children fail to start while a file exists, then start: the execution runs, no
    failure is recorded and the worker keeps serving."""
    broken = tmp_path / "broken"
    broken.touch()
    execution = user_project.enqueue("default", "succeeds")
    output = tmp_path / "worker.log"
    with output.open("w") as out:
        worker = user_project.start(
            "manage.py",
            "run_tasks",
            "--backend",
            "default",
            cwd=tmp_path,
            output=out,
            USER_PROJECT_BREAK_CHILDREN=str(broken),
            USER_PROJECT_STARTS=str(user_project.starts),
        )
        try:
            wait_until(lambda: len(starts(user_project)) >= 2, timeout=DEADLINE)
            broken.unlink()
            wait_until(lambda: finished(user_project, "default", execution.id), timeout=DEADLINE)
            later = user_project.enqueue("default", "succeeds")
            wait_until(lambda: finished(user_project, "default", later.id), timeout=DEADLINE)
            assert worker.poll() is None  # still serving
        finally:
            stop(worker)
    log = output.read_text()
    for done in (execution, later):
        result = user_project.store("default").get(done.id)
        assert result.status == TaskResultStatus.SUCCESSFUL, log
        assert result.errors == []
    assert "worker process did not start" in log


def starts(project: UserProject) -> list[str]:
    return project.starts.read_text().splitlines() if project.starts.exists() else []


def test_a_burst_run_on_an_empty_queue_starts_no_worker_process(
    user_project: UserProject, tmp_path: Path
) -> None:
    """Warm processes start when there is work: none for an empty queue (a child would
    write to ``starts`` and refuse to load, and the worker would exit 1)."""
    output = tmp_path / "worker.log"
    with output.open("w") as out:
        worker = user_project.start(
            "manage.py",
            "run_tasks",
            "--burst",
            "--backend",
            "default",
            cwd=tmp_path,
            output=out,
            USER_PROJECT_BREAK_CHILDREN="always",
            USER_PROJECT_STARTS=str(user_project.starts),
        )
        try:
            wait_until(lambda: worker.poll() is not None, timeout=DEADLINE)
        finally:
            stop(worker)
    log = output.read_text()
    assert worker.returncode == 0, log
    assert starts(user_project) == [], log
    assert "stopped after 0 attempt(s): none; worker processes started: 0" in log


def test_worker_processes_start_when_work_arrives(
    user_project: UserProject, tmp_path: Path
) -> None:
    """One due execution starts one warm process (max_workers is 2); more work starts
    the second, and the worker keeps both (replacing none)."""
    first = user_project.enqueue("default", "succeeds")
    output = tmp_path / "worker.log"
    with output.open("w") as out:
        worker = user_project.start(
            "manage.py",
            "run_tasks",
            "--burst",
            "--backend",
            "default",
            cwd=tmp_path,
            output=out,
        )
        try:
            wait_until(lambda: worker.poll() is not None, timeout=DEADLINE)
        finally:
            stop(worker)
    log = output.read_text()
    assert worker.returncode == 0, log
    assert "stopped after 1 attempt(s): succeeded=1; worker processes started: 1" in log, log
    store = user_project.store("default")
    assert store.get(first.id).status == TaskResultStatus.SUCCESSFUL

    many = [user_project.enqueue("default", "succeeds") for _ in range(6)]
    with output.open("w") as out:
        worker = user_project.start(
            "manage.py", "run_tasks", "--burst", "--backend", "default", cwd=tmp_path, output=out
        )
        try:
            wait_until(lambda: worker.poll() is not None, timeout=DEADLINE)
        finally:
            stop(worker)
    log = output.read_text()
    assert worker.returncode == 0, log
    assert "stopped after 6 attempt(s): succeeded=6; worker processes started: 2" in log, log
    assert all(store.get(e.id).status == TaskResultStatus.SUCCESSFUL for e in many)


def test_a_worker_whose_children_cannot_start_exits_at_the_first_work(
    user_project: UserProject, tmp_path: Path
) -> None:
    """A serving worker starts no process while the queue is empty; the first execution
    starts them, they cannot start, so it is failed and the worker stops (exit 1)."""
    output = tmp_path / "worker.log"
    with output.open("w") as out:
        worker = user_project.start(
            "manage.py",
            "run_tasks",
            cwd=tmp_path,
            output=out,
            USER_PROJECT_BREAK_CHILDREN="always",
            USER_PROJECT_STARTS=str(user_project.starts),
        )
        try:
            execution = user_project.enqueue("default", "succeeds")
            wait_until(lambda: worker.poll() is not None, timeout=DEADLINE)
        finally:
            stop(worker)
    log = output.read_text()
    assert worker.returncode == 1, log
    from django_tasks_fs.worker.startup import MAX_FAILED_STARTS

    assert len(starts(user_project)) == MAX_FAILED_STARTS, log
    assert "CommandError: worker processes could not start" in log
    assert user_project.store("default").get(execution.id).status == TaskResultStatus.FAILED
