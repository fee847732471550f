"""Cloud Run Jobs through the official clients: executions are real local processes."""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import run_v2

from .support import wait_for

#: The job's container: record the environment, then behave as argv[1] says.
SCRIPT = """
import json, os, signal, sys, time
mode, out = sys.argv[1], sys.argv[2]
def log(event):
    with open(out, "a") as f:
        f.write(json.dumps({"event": event, "pid": os.getpid(), "cwd": os.getcwd(),
                            "env": {k: v for k, v in os.environ.items()
                                    if k.startswith(("CLOUD_RUN_", "APP_"))}}) + "\\n")
def on_term(*_):
    log("SIGTERM")
    sys.exit(143)
signal.signal(signal.SIGTERM, signal.SIG_IGN if mode == "stubborn" else on_term)
log("start")
if mode == "fail":
    sys.exit(3)
if mode in ("hang", "stubborn"):
    time.sleep(60)
if mode == "nap":
    time.sleep(0.5)
    log("end")
"""
#: A task timeout that leaves the container ample time to start and log before SIGTERM.
STARTUP = timedelta(seconds=1.5)
Completion = run_v2.ExecutionReference.CompletionStatus
ConditionState = run_v2.Condition.State


@pytest.fixture
def job(jobs: Any, location: str) -> Any:
    operation = jobs.create_job(
        parent=location,
        job_id="worker",
        job={
            "template": {
                "template": {
                    "containers": [
                        {
                            "image": "ignored",
                            "command": [sys.executable, "-c", SCRIPT],
                            "args": ["ok", "unused"],
                            "env": [{"name": "APP_MODE", "value": "test"}],
                        }
                    ],
                    "max_retries": 2,
                }
            }
        },
    )
    return operation.result(timeout=5)


def run(jobs: Any, job: Any, mode: str, out: Path, **overrides: Any) -> str:
    container = {"args": [mode, str(out)], **overrides.pop("container", {})}
    operation = jobs.run_job(
        request={"name": job.name, "overrides": {"container_overrides": [container], **overrides}}
    )
    return str(operation.metadata.name)


def events(out: Path) -> list[dict[str, Any]]:
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text().splitlines()]


def finished(executions: Any, name: str, timeout: float = 10.0) -> Any:
    def done() -> Any:
        execution = executions.get_execution(name=name)
        return execution if "completion_time" in execution else None

    return wait_for(done, timeout=timeout, what=f"execution {name} to finish")


def test_job_defaults_and_errors(jobs: Any, job: Any, location: str) -> None:
    found = jobs.get_job(name=job.name)

    assert found.template.task_count == 1
    assert found.template.template.max_retries == 2
    assert found.template.template.timeout == timedelta(minutes=10)
    assert [j.name for j in jobs.list_jobs(parent=location)] == [job.name]
    with pytest.raises(exceptions.AlreadyExists):
        jobs.create_job(parent=location, job_id="worker", job=found)
    with pytest.raises(exceptions.NotFound):
        jobs.get_job(name=f"{location}/jobs/missing")
    with pytest.raises(exceptions.NotFound):
        jobs.run_job(name=f"{location}/jobs/missing")


def test_max_retries_defaults_to_three(jobs: Any, location: str) -> None:
    operation = jobs.create_job(
        parent=location,
        job_id="plain",
        job={"template": {"template": {"containers": [{"command": ["true"]}]}}},
    )

    assert operation.result(timeout=5).template.template.max_retries == 3


def test_update_job_replaces_the_job_and_keeps_its_history(jobs: Any, job: Any) -> None:
    """UpdateJob has no mask: the job sent is the new job (output fields aside)."""
    found = jobs.get_job(name=job.name)
    found.template.template.max_retries = 0
    found.template.template.timeout = timedelta(seconds=90)
    found.template.parallelism = 2
    updated = jobs.update_job(job=found).result(timeout=5)

    assert updated.template.template.max_retries == 0
    assert updated.template.template.timeout == timedelta(seconds=90)
    assert updated.template.parallelism == 2
    assert list(updated.template.template.containers) == list(found.template.template.containers)
    assert updated.generation == found.generation + 1
    assert updated.uid == found.uid
    assert updated.create_time == found.create_time
    assert jobs.get_job(name=job.name) == updated


def test_update_job_of_a_missing_job(jobs: Any, job: Any, location: str) -> None:
    missing = jobs.get_job(name=job.name)
    missing.name = f"{location}/jobs/other"
    with pytest.raises(exceptions.NotFound):
        jobs.update_job(job=missing).result(timeout=5)
    request = {"job": missing, "allow_missing": True}
    created = jobs.update_job(request=request).result(timeout=5)
    assert created.name == missing.name
    assert created.generation == 1


def test_run_job_runs_the_command_with_cloud_run_env(
    jobs: Any, executions: Any, job: Any, tmp_path: Path, workdir: Path
) -> None:
    out = tmp_path / "events.jsonl"

    name = run(jobs, job, "ok", out, container={"env": [{"name": "APP_EXTRA", "value": "1"}]})

    assert name.startswith(f"{job.name}/executions/worker-")
    execution = finished(executions, name)
    assert execution.succeeded_count == 1
    assert execution.failed_count == 0
    assert execution.conditions[0].state == ConditionState.CONDITION_SUCCEEDED
    [started] = events(out)
    assert started["cwd"] == str(workdir)
    assert started["env"] == {
        "APP_MODE": "test",
        "APP_EXTRA": "1",
        "CLOUD_RUN_JOB": "worker",
        "CLOUD_RUN_EXECUTION": name.rsplit("/", 1)[-1],
        "CLOUD_RUN_TASK_INDEX": "0",
        "CLOUD_RUN_TASK_COUNT": "1",
        "CLOUD_RUN_TASK_ATTEMPT": "0",
    }
    found = jobs.get_job(name=job.name)
    assert found.execution_count == 1
    assert found.latest_created_execution.name == name
    assert found.latest_created_execution.completion_status == Completion.EXECUTION_SUCCEEDED
    assert [e.name for e in executions.list_executions(parent=job.name)] == [name]


def test_operation_result_is_the_finished_execution(jobs: Any, job: Any, tmp_path: Path) -> None:
    operation = jobs.run_job(
        request={
            "name": job.name,
            "overrides": {"container_overrides": [{"args": ["ok", str(tmp_path / "o")]}]},
        }
    )

    execution = operation.result(timeout=15)

    assert execution.name == operation.metadata.name
    assert execution.succeeded_count == 1


def test_failing_task_is_retried_up_to_max_retries(
    jobs: Any, executions: Any, job: Any, tmp_path: Path
) -> None:
    out = tmp_path / "events.jsonl"

    execution = finished(executions, run(jobs, job, "fail", out))

    assert [e["env"]["CLOUD_RUN_TASK_ATTEMPT"] for e in events(out)] == ["0", "1", "2"]
    assert execution.failed_count == 1
    assert execution.retried_count == 2
    assert execution.conditions[0].state == ConditionState.CONDITION_FAILED
    latest = jobs.get_job(name=job.name).latest_created_execution
    assert latest.completion_status == Completion.EXECUTION_FAILED


def test_task_count_override_runs_each_task(
    jobs: Any, executions: Any, job: Any, tmp_path: Path
) -> None:
    out = tmp_path / "events.jsonl"

    execution = finished(executions, run(jobs, job, "ok", out, task_count=3))

    assert execution.succeeded_count == 3
    indexes = sorted(e["env"]["CLOUD_RUN_TASK_INDEX"] for e in events(out))
    assert indexes == ["0", "1", "2"]
    assert {e["env"]["CLOUD_RUN_TASK_COUNT"] for e in events(out)} == {"3"}


def test_the_jobs_parallelism_bounds_the_tasks_running_at_once(
    jobs: Any, executions: Any, job: Any, tmp_path: Path
) -> None:
    out = tmp_path / "events.jsonl"
    updated = run_v2.Job(jobs.get_job(name=job.name))
    updated.template.parallelism = 2
    jobs.update_job(job=updated).result(timeout=5)

    execution = finished(executions, run(jobs, job, "nap", out, task_count=5), timeout=30)

    assert (execution.succeeded_count, execution.parallelism) == (5, 2)
    running, most = 0, 0
    for event in events(out):
        running += {"start": 1, "end": -1}[event["event"]]
        most = max(most, running)
    assert most <= 2


def test_run_job_refuses_what_cloud_run_refuses(jobs: Any, job: Any, tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    with pytest.raises(exceptions.InvalidArgument, match="task_count"):
        run(jobs, job, "ok", out, task_count=10_001)
    too_long = {"env": [{"name": "APP_IDS", "value": "x" * 32_769}]}
    with pytest.raises(exceptions.InvalidArgument, match="APP_IDS"):
        run(jobs, job, "ok", out, container=too_long)
    assert events(out) == []


def test_cancel_execution_sends_sigterm_and_does_not_retry(
    jobs: Any, executions: Any, job: Any, tmp_path: Path
) -> None:
    out = tmp_path / "events.jsonl"
    name = run(jobs, job, "hang", out)
    wait_for(lambda: events(out), what="the process to start")

    executions.cancel_execution(name=name)

    execution = finished(executions, name)
    assert [e["event"] for e in events(out)] == ["start", "SIGTERM"]
    assert execution.cancelled_count == 1
    assert execution.retried_count == 0
    assert execution.conditions[0].execution_reason == run_v2.Condition.ExecutionReason.CANCELLED
    assert (
        jobs.get_job(name=job.name).latest_created_execution.completion_status
        == Completion.EXECUTION_CANCELLED
    )
    with pytest.raises(exceptions.FailedPrecondition):
        executions.cancel_execution(name=name)


def test_timeout_terminates_and_retries_the_task(
    jobs: Any, executions: Any, job: Any, tmp_path: Path
) -> None:
    out = tmp_path / "events.jsonl"

    name = run(jobs, job, "hang", out, timeout=STARTUP)
    execution = finished(executions, name)

    assert [e["event"] for e in events(out)] == ["start", "SIGTERM"] * 3
    assert execution.failed_count == 1
    assert execution.retried_count == 2


def test_sigkill_follows_sigterm_after_the_grace(
    jobs: Any, executions: Any, location: str, tmp_path: Path
) -> None:
    out = tmp_path / "events.jsonl"
    container = {"command": [sys.executable, "-c", SCRIPT], "args": ["stubborn", str(out)]}
    template = {"containers": [container], "max_retries": 0, "timeout": STARTUP}
    operation = jobs.create_job(
        parent=location, job_id="stubborn", job={"template": {"template": template}}
    )
    started = time.monotonic()

    execution = finished(executions, jobs.run_job(name=operation.result().name).metadata.name)

    assert execution.failed_count == 1
    assert time.monotonic() - started < 10
    [attempt] = events(out)
    with pytest.raises(ProcessLookupError):
        os.kill(attempt["pid"], 0)


def test_delete_execution(jobs: Any, executions: Any, job: Any, tmp_path: Path) -> None:
    name = run(jobs, job, "ok", tmp_path / "o")
    finished(executions, name)

    executions.delete_execution(name=name).result(timeout=5)

    with pytest.raises(exceptions.NotFound):
        executions.get_execution(name=name)
