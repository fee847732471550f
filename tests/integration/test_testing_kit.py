"""The test kit users get (``django_tasks_fs.testing``), used as a user would."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.tasks import TaskResultStatus, task_backends

from django_tasks_fs.testing import TaskRunner
from tests import tasks
from tests.factories import python_path


def test_tasks_firestore_gives_each_test_an_empty_project(tasks_firestore: str) -> None:
    backend: Any = task_backends["default"]
    assert backend.config.firestore_project == tasks_firestore
    assert settings.TASKS["default"]["OPTIONS"]["firestore_project"] == tasks_firestore
    assert backend.executions.count() == 0
    tasks.noop.enqueue()
    assert backend.executions.count() == 1


def test_run_all_runs_everything_including_retries(task_runner: TaskRunner) -> None:
    ok = tasks.echo.enqueue(1)
    flaky = tasks.flaky.enqueue(fail_times=2)
    broken = tasks.failing.enqueue("x")
    results = {r.id: r for r in task_runner.run_all()}
    assert results[ok.id].status == TaskResultStatus.SUCCESSFUL
    assert results[ok.id].return_value == {"args": [1], "kwargs": {}}
    assert results[flaky.id].return_value == 3
    assert results[broken.id].status == TaskResultStatus.FAILED
    assert results[broken.id].attempts == 3
    assert task_runner.run_all() == []  # nothing left


def test_run_all_runs_waiting_retries_on_a_leap_day(
    task_runner: TaskRunner, monkeypatch: Any
) -> None:
    """The retry horizon is a duration, not "the same day next year" (29 Feb has none)."""
    clock = task_backends["default"].executions.clock  # type: ignore[attr-defined]
    real_now, start = clock.now, clock.now()
    leap_day = datetime(2028, 2, 29, 12, 0, tzinfo=UTC)
    monkeypatch.setattr(clock, "now", lambda: leap_day + (real_now() - start))
    flaky = tasks.flaky.enqueue(fail_times=1)
    task_runner.run(flaky)  # the first attempt fails; the retry waits for its backoff
    [result] = task_runner.run_all()
    assert result.id == flaky.id
    assert result.return_value == 2


def test_run_one(task_runner: TaskRunner) -> None:
    result = task_runner.run(tasks.echo.enqueue(k=2))
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == {"args": [], "kwargs": {"k": 2}}


def test_a_users_suite_needs_only_the_plugin(tmp_path: Any, firestore_emulator: Any) -> None:
    """A separate project, no conftest: the installed plugin provides the fixtures."""
    import os
    import subprocess
    import sys

    (tmp_path / "userapp").mkdir()
    (tmp_path / "userapp" / "__init__.py").write_text("")
    (tmp_path / "userapp" / "tasks.py").write_text(
        "from django.tasks import task\n\n@task\ndef double(n):\n    return 2 * n\n"
    )
    (tmp_path / "user_settings.py").write_text(
        "SECRET_KEY = 'x'\nUSE_TZ = True\nINSTALLED_APPS = ['django_tasks_fs', 'userapp']\n"
        "TASKS = {'default': {'BACKEND': 'django_tasks_fs.backends.ProcessBackend',"
        " 'OPTIONS': {'project_id': 'user-project'}}}\n"
    )
    (tmp_path / "test_user.py").write_text(
        "from userapp.tasks import double\n\n"
        "def test_double(task_runner):\n"
        "    result = double.enqueue(21)\n"
        "    (done,) = task_runner.run_all()\n"
        "    assert done.id == result.id and done.return_value == 42\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "user_settings",
        "PYTHONPATH": python_path(tmp_path),
    }
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout
