"""``run_tasks`` and ``execute_task`` as real subprocesses against the emulator."""

from __future__ import annotations

import os
import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django.tasks import TaskResultStatus, task_backends

from django_tasks_fs import cancel_task, enqueue_many
from django_tasks_fs.store import CancelOutcome, ExecutionFilter
from tests import tasks
from tests.conftest import start_django, wait_until

TIMEOUT = 90


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def run_worker(project: str, *args: str) -> subprocess.CompletedProcess[str]:
    process = start_django(
        project, "run_tasks", *args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    out, _ = process.communicate(timeout=TIMEOUT)
    return subprocess.CompletedProcess(process.args, process.returncode, out, None)


def background_worker(project: str, *args: str) -> subprocess.Popen[str]:
    # Its own session, so killpg() reaches the worker and its children together.
    return start_django(
        project,
        "run_tasks",
        *args,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def statuses(backend_alias: str = "default") -> Counter[str]:
    backend: Any = task_backends[backend_alias]
    return Counter(str(e.status) for e in backend.executions.page(limit=1000).items)


def test_burst_runs_everything_once(tasks_project: str, tmp_path: Path) -> None:
    log = tmp_path / "ran.txt"
    results = [tasks.record.enqueue(str(log), f"t{i}") for i in range(20)]
    done = run_worker(tasks_project, "--burst", "-v", "2")
    assert done.returncode == 0, done.stdout
    assert sorted(lines(log)) == sorted(f"t{i}" for i in range(20))
    for result in results:
        result.refresh()
        assert result.status == TaskResultStatus.SUCCESSFUL
        assert result.attempts == 1


def test_two_workers_on_200_tasks_run_each_exactly_once(tasks_project: str, tmp_path: Path) -> None:
    log = tmp_path / "ran.txt"
    for i in range(200):
        tasks.record.enqueue(str(log), f"t{i}")
    workers = [background_worker(tasks_project, "--burst", "--batch-size", "10") for _ in range(2)]
    for worker in workers:
        out, _ = worker.communicate(timeout=240)
        assert worker.returncode == 0, out
    ran = Counter(lines(log))
    assert len(ran) == 200
    assert set(ran.values()) == {1}
    assert statuses() == Counter({"SUCCESSFUL": 200})


def test_tasks_enqueued_in_bulk_each_run_once(tasks_project: str, tmp_path: Path) -> None:
    log = tmp_path / "ran.txt"
    results = enqueue_many(tasks.record, [((str(log), f"t{i}"), {}) for i in range(510)])
    assert len({r.id for r in results}) == 510  # two commits (500 + 10) on the emulator
    done = run_worker(tasks_project, "--burst")
    assert done.returncode == 0, done.stdout
    assert Counter(lines(log)) == Counter(f"t{i}" for i in range(510))
    assert statuses() == Counter({"SUCCESSFUL": 510})


def test_kill_9_mid_task_then_the_task_completes_once_after_the_lease_expires(
    tasks_project: str, tmp_path: Path
) -> None:
    log = tmp_path / "ran.txt"
    result = tasks.record_and_sleep.enqueue(str(log), "job", 3.0)  # killed well within
    first = background_worker(tasks_project)
    wait_until(lambda: "start job" in lines(log), timeout=60)
    os.killpg(first.pid, signal.SIGKILL)
    first.communicate(timeout=30)
    result.refresh()
    assert result.status == TaskResultStatus.RUNNING  # stuck until its lease expires

    second = background_worker(tasks_project)
    try:
        wait_until(lambda: "end job" in lines(log), timeout=60)
        wait_until(
            lambda: (result.refresh(), result.status)[1] == TaskResultStatus.SUCCESSFUL, timeout=30
        )
    finally:
        second.send_signal(signal.SIGTERM)
        second.communicate(timeout=60)
    assert lines(log) == ["start job", "start job", "end job"]
    assert result.attempts == 2
    assert [e.exception_class_path for e in result.errors] == [
        "django_tasks_fs.exceptions.WorkerLost"
    ]


def test_sigterm_hands_running_tasks_back_and_records_no_failure(
    tasks_project: str, tmp_path: Path
) -> None:
    log = tmp_path / "ran.txt"
    slow = [tasks.sleep_then_record.enqueue(str(log), 60) for _ in range(2)]
    worker = background_worker(tasks_project, "--shutdown-grace", "0.5")
    wait_until(lambda: lines(log).count("started") == 2, timeout=60)
    worker.send_signal(signal.SIGTERM)
    out, _ = worker.communicate(timeout=60)
    assert worker.returncode == 0, out
    assert lines(log).count("interrupted TaskCancelledError") == 2
    for result in slow:
        result.refresh()
        assert result.status == TaskResultStatus.READY
        assert result.errors == []
        assert result.attempts == 0
    backend: Any = task_backends["default"]
    assert backend.executions.count(ExecutionFilter(status=TaskResultStatus.FAILED)) == 0


def test_sigterm_lets_short_tasks_finish(tasks_project: str, tmp_path: Path) -> None:
    log = tmp_path / "ran.txt"
    result = tasks.sleep_then_record.enqueue(str(log), 1.0)
    worker = background_worker(tasks_project, "--shutdown-grace", "20")
    wait_until(lambda: "started" in lines(log), timeout=60)
    worker.send_signal(signal.SIGTERM)
    out, _ = worker.communicate(timeout=60)
    assert worker.returncode == 0, out
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert lines(log) == ["started", "finished"]


def test_graceful_cancel_of_a_running_task(tasks_project: str, tmp_path: Path) -> None:
    log = tmp_path / "ran.txt"
    result = tasks.wait_for_cancel.enqueue(str(log))
    worker = background_worker(tasks_project)
    try:
        wait_until(lambda: "started" in lines(log), timeout=60)
        assert cancel_task(result) == CancelOutcome.REQUESTED
        wait_until(lambda: (result.refresh(), result.is_finished)[1], timeout=30)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=60)
    assert "noticed cancel" in lines(log)
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[-1].exception_class_path == "django_tasks_fs.exceptions.TaskCancelledError"


def test_forceful_cancel_sigterms_the_job_process(tasks_project: str, tmp_path: Path) -> None:
    log = tmp_path / "ran.txt"
    result = tasks.sleep_then_record.using(backend="jobs").enqueue(str(log), 60)
    worker = background_worker(tasks_project, "--backend", "jobs")
    try:
        wait_until(lambda: "started" in lines(log), timeout=60)
        assert cancel_task(result, force=True) == CancelOutcome.REQUESTED
        wait_until(lambda: (result.refresh(), result.is_finished)[1], timeout=30)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=60)
    assert "interrupted TaskCancelledError" in lines(log)
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[-1].exception_class_path == "django_tasks_fs.exceptions.TaskCancelledError"
    assert result.attempts == 1


def test_max_attempts_exhausted_through_the_worker(tasks_project: str) -> None:
    result = tasks.failing.enqueue("always")
    done = run_worker(tasks_project, "--burst")
    assert done.returncode == 0, done.stdout
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.attempts == 3
    assert len(result.errors) == 3


def test_run_once_through_the_worker(tasks_project: str) -> None:
    result = tasks.failing.using(backend="once").enqueue("once")
    done = run_worker(tasks_project, "--burst", "--backend", "once")
    assert done.returncode == 0, done.stdout
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.attempts == 1


@pytest.mark.parametrize(
    ("task_name", "expected_code", "status"),
    [("noop", 0, "SUCCESSFUL"), ("failing", 75, "READY"), ("permanent", 1, "FAILED")],
)
def test_execute_task_exit_codes(
    tasks_project: str, task_name: str, expected_code: int, status: str
) -> None:
    result = getattr(tasks, task_name).enqueue()
    process = start_django(
        tasks_project, "execute_task", result.id, stdout=subprocess.PIPE, text=True
    )
    out, _ = process.communicate(timeout=TIMEOUT)
    assert process.returncode == expected_code, out
    result.refresh()
    assert str(result.status) == status


def test_execute_task_final_failure_exits_non_zero(tasks_project: str) -> None:
    result = tasks.failing.enqueue()
    codes = []
    for _ in range(4):
        backend: Any = task_backends["default"]
        backend.executions._compare_and_set(
            result.id, lambda c, now: c.evolve(run_after=now) if c.status == "READY" else c
        )
        process = start_django(
            tasks_project, "execute_task", result.id, stdout=subprocess.PIPE, text=True
        )
        process.communicate(timeout=TIMEOUT)
        codes.append(process.returncode)
    assert codes == [75, 75, 1, 1]  # the final failure, and any redelivery after it, look red


def test_execute_task_unknown_id(tasks_project: str) -> None:
    process = start_django(
        tasks_project, "execute_task", "no-such-id", stderr=subprocess.PIPE, text=True
    )
    _, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 2
    assert "no-such-id" in err


def test_timeout_interrupts_the_attempt_and_records_task_timeout(
    tasks_project: str, tmp_path: Path
) -> None:
    log = tmp_path / "ran.txt"
    result = tasks.too_slow.enqueue(str(log))
    process = start_django(
        tasks_project, "execute_task", result.id, stdout=subprocess.PIPE, text=True
    )
    out, _ = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 75, out  # retry wanted: attempts are left
    result.refresh()
    assert result.status == TaskResultStatus.READY
    assert result.errors[-1].exception_class_path == "django_tasks_fs.exceptions.TaskTimeout"
    assert "exceeded its timeout of 1.0s" in result.errors[-1].traceback
    assert lines(log) == ["started"]


def test_queue_filter_and_once(tasks_project: str, tmp_path: Path) -> None:
    log = tmp_path / "ran.txt"
    email = tasks.record.using(queue_name="emails").enqueue(str(log), "email")
    default = tasks.record.enqueue(str(log), "default")
    done = run_worker(tasks_project, "--once", "--queue", "emails")
    assert done.returncode == 0, done.stdout
    email.refresh()
    default.refresh()
    assert email.status == TaskResultStatus.SUCCESSFUL
    assert default.status == TaskResultStatus.READY
    assert lines(log) == ["email"]


def test_unknown_backend_alias_is_a_clear_error(tasks_project: str) -> None:
    done = run_worker(tasks_project, "--backend", "nope")
    assert done.returncode == 1
    assert "Not ProcessBackend aliases: nope" in done.stdout
