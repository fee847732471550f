"""Only a registered ``@task`` ever runs: hostile task paths in stored executions and
schedules, delivered through execute/, the local worker, execute_task and schedule/."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.tasks import Task, TaskResultStatus, task_backends

from django_tasks_fs.emulators.gcloud.oidc import TokenIssuer
from django_tasks_fs.results import (
    MAX_TASK_PATH_LENGTH,
    TaskNotImportable,
    check_task_path,
    load_task,
)
from django_tasks_fs.store import ScheduledTask, TaskExecution
from django_tasks_fs.worker.chunks import Job, run_chunk
from tests import tokens
from tests.integration.test_endpoints import post, stored

from .conftest import forbid_dispatch, snapshot

CANARY = "tests.security.import_canary"
#: Refused by their form: nothing is imported (the import canary proves it).
MALFORMED = [
    "",
    "os",
    "../../etc/passwd",
    "/etc/passwd",
    "C:\\tasks.noop",
    "a..b",
    ".x",
    "..x",
    "x.",
    "tests.tasks .noop",
    " tests.tasks.noop",
    "tests.tasks.noop ",
    "tests/tasks.noop",
    "tests.tasks\x00.noop",
    "tests.tasks.noop\n",
    "tests.tasks.noop\r\nX: y",
    "tests.tasks.\u200bnoop",
    "tests.tasks.noop.__class__",
    "tests.tasks.lambda",
    "tests.security.__init__.fire",
    "__main__.fire",
    "django.__main__.main",  # importing it would run manage.py with this process's argv
    f"{CANARY}.fire()",
    f"{CANARY}..fire",
    f"{CANARY}.fire\n",
    f"{CANARY}.fire;rm -rf /",
    f"{CANARY}.__dict__",
    f"{CANARY}.__builtins__",
    f"{CANARY}.fire#",
    f"{CANARY}.fire:fire",
    f"{CANARY}.fire " * 3,
    f"{CANARY}." + "x" * MAX_TASK_PATH_LENGTH,
    ".".join([CANARY] * 20) + ".fire",
    "x" * 10_000,
]
#: Well formed, imported, but not a django.tasks.Task: refused after import, never called.
NOT_A_TASK = [
    "os.system",
    "subprocess.run",
    "builtins.eval",
    "builtins.exec",
    "tests.tasks._record",
    "tests.tasks.os",
    "django.core.management.call_command",
    "django_tasks_fs.results.load_task",
    "tests.security.canary.fire",
    "tests.security.canary.impostor",  # quacks like a Task
    "tests.security.canary.Impostor",
    "tests.security.canary.IMPORTS",
]
#: Well formed, but nothing importable there.
MISSING = [
    "tests.tasks.noop.func",
    "tests.tasks.nope",
    "no_such_package_here.task",
    "tests.tasks.\uff4e\uff4f\uff4f\uff50",  # fullwidth: an identifier, but getattr does not normalise it
    "tests.security.exploding.task",  # the module raises RuntimeError while importing
]
HOSTILE = MALFORMED + NOT_A_TASK + MISSING


def expected_reason(path: str) -> str:
    if path in MALFORMED:
        return "nothing was imported"
    if path in NOT_A_TASK:
        return "not a @task"
    return "cannot be imported"


@pytest.mark.parametrize("path", MALFORMED, ids=repr)
def test_a_malformed_task_path_is_refused_before_any_import(canaries: list[str], path: str) -> None:
    with pytest.raises(TaskNotImportable, match="nothing was imported") as info:
        load_task(path)
    assert len(str(info.value)) < 400  # the message quotes at most 100 characters of it
    assert canaries == []


@pytest.mark.parametrize("path", NOT_A_TASK + MISSING, ids=repr)
def test_only_a_task_instance_is_ever_loaded(canaries: list[str], path: str) -> None:
    check_task_path(path)  # the form is fine
    with pytest.raises(TaskNotImportable, match=expected_reason(path)):
        load_task(path)


def test_check_task_path_accepts_real_task_paths() -> None:
    for path in ("tests.tasks.noop", "django_tasks_fs.tasks.x", "a.b", "app_1.tâches.envoyer"):
        assert check_task_path(path) == path
    assert isinstance(load_task("tests.tasks.noop"), Task)
    with pytest.raises(TaskNotImportable, match="not a str"):
        check_task_path(None)


def test_a_well_formed_path_reaches_the_import_system_but_a_non_task_never_runs(
    canaries: list[str], tmp_path: Path
) -> None:
    """Control for the canary: a well-formed path does import its module (import-time
    code runs: whoever can write task paths can import any module), yet nothing runs."""
    with pytest.raises(TaskNotImportable, match="is a function, not a @task"):
        load_task(f"{CANARY}.fire")
    assert canaries == [CANARY]


def hostile_executions(backend: Any, marker: Path) -> list[TaskExecution]:
    """One READY execution per hostile path; args point the canaries at ``marker``."""
    return [stored(backend, str(marker), task_path=path, backend=backend.alias) for path in HOSTILE]


def assert_failed_cleanly(backend: Any, executions: list[TaskExecution]) -> None:
    wrong = []
    for execution in executions:
        after = backend.executions.get(execution.id)
        error = after.errors[-1] if after.errors else None
        if (
            after.status != TaskResultStatus.FAILED
            or after.lease_owner is not None
            or after.attempts != 1
            or error is None
            or error.exception_class_path != "django_tasks_fs.exceptions.TaskNotImportable"
            or expected_reason(execution.task_path) not in error.traceback
        ):
            wrong.append((execution.task_path[:60], after.status, after.lease_owner, error))
    assert wrong == []


def test_hostile_task_paths_through_the_execute_endpoint(
    cloud: Any, issuer: TokenIssuer, tmp_path: Path, canaries: list[str]
) -> None:
    marker = tmp_path / "fired"
    executions = hostile_executions(cloud, marker)
    wrong = []
    for execution in executions:
        body = {"execution_id": execution.id, "backend": "cloud"}
        response = post("/tasks/execute/", tokens.sign(issuer), body)
        if response.status_code != 200 or response.json()["outcome"] != "failed":
            wrong.append((execution.task_path[:60], response.status_code, response.content))
    assert wrong == []
    assert_failed_cleanly(cloud, executions)
    assert not marker.exists()
    assert canaries == []


def test_hostile_task_paths_through_the_local_worker(
    cloud: Any, tmp_path: Path, canaries: list[str]
) -> None:
    """One chunk of the run_tasks worker process: the hostile executions, then a real task."""
    backend = task_backends["default"]
    marker, log = tmp_path / "fired", tmp_path / "ran.txt"
    executions = hostile_executions(backend, marker)
    control = stored(backend, str(log), backend="default")
    job = Job(backend="default", executions=(*executions, control))
    done = run_chunk(job, "security-worker", threading.Event())
    assert sorted(d.outcome for d in done) == ["failed"] * len(executions) + ["succeeded"]
    assert_failed_cleanly(backend, executions)
    assert log.read_text() == "ran\n"  # the chunk went on to the real task
    assert not marker.exists()
    assert canaries == []


def test_hostile_task_paths_through_execute_task(
    cloud: Any, tmp_path: Path, canaries: list[str]
) -> None:
    """``manage.py execute_task`` (the Cloud Run Jobs entrypoint), in this process."""
    backend = task_backends["jobs"]
    marker = tmp_path / "fired"
    executions = hostile_executions(backend, marker)
    codes = []
    for execution in executions:
        with pytest.raises(SystemExit) as exited:
            call_command("execute_task", execution.id, backend="jobs", stdout=StringIO())
        codes.append(exited.value.code)
    assert codes == [1] * len(executions)  # FAILED, no retry
    assert_failed_cleanly(backend, executions)
    assert not marker.exists()
    assert canaries == []


def test_hostile_task_paths_in_schedules_enqueue_nothing(
    cloud: Any, issuer: TokenIssuer, canaries: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    forbid_dispatch(cloud, monkeypatch)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    created = hour - timedelta(days=1)
    names = []
    for index, path in enumerate(HOSTILE):
        name = f"hostile-{index}"
        cloud.schedules.create(
            ScheduledTask(
                name=name, task_path=path, schedule="0 * * * *", backend="cloud", created_at=created
            )
        )
        names.append(name)
    before = snapshot(cloud)
    wrong = []
    for name in names:
        response = post(
            "/tasks/schedule/",
            tokens.sign(issuer),
            {"task_id": name, "backend": "cloud"},
            **{"X-CloudScheduler-JobName": name, "X-CloudScheduler-ScheduleTime": hour.isoformat()},
        )
        if response.status_code != 200 or response.json() != {"outcome": "task not importable"}:
            wrong.append((name, response.status_code, response.content))
    assert wrong == []
    assert snapshot(cloud) == before
    assert canaries == []
