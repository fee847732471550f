"""Cloud Run Jobs fan-out through the emulator: ``enqueue_many()`` on a
CloudRunJobsBackend starts one job execution with ``task_count=N``, each task running
the member at its ``CLOUD_RUN_TASK_INDEX`` (``execute_task --fan-out``)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.tasks import TaskResultStatus, task_backends

from django_tasks_fs import cancel_task, enqueue_many
from django_tasks_fs.dispatching import sweep
from django_tasks_fs.emulators.gcloud.server import GoogleCloudEmulator
from django_tasks_fs.gcp.clients import executions_client, jobs_client
from django_tasks_fs.store import CancelOutcome, DispatchState
from tests import tasks
from tests.conftest import wait_until
from tests.factories import LOCATION, create_job

JOB = "e2e-job"
#: Members at once in the emulator (each a Django process on this machine).
PARALLELISM = 8


@pytest.fixture
def fan_out_project(bare_project: str, gcloud: GoogleCloudEmulator) -> str:
    """The ``cloudjobs`` backend's job, running at most PARALLELISM tasks at once."""
    create_job(gcloud, bare_project, max_retries=1, parallelism=PARALLELISM)
    return bare_project


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def all_finished(results: list[Any]) -> bool:
    for result in results:
        result.refresh()
    return all(r.is_finished for r in results)


def job(project: str, backend: Any) -> Any:
    name = f"projects/{project}/locations/{LOCATION}/jobs/{JOB}"
    return jobs_client(backend.emulator).get_job(name=name)


def run_fan_out(project: str, tmp_path: Path, members: int) -> None:
    """``members`` calls in one job execution, each body once; member 3 fails once and
    is retried by its task alone."""
    log = tmp_path / "ran.txt"
    backend: Any = task_backends["cloudjobs"]
    tokens = [f"m{i}" for i in range(members)]
    task = tasks.record_or_fail_once.using(backend="cloudjobs", queue_name=JOB)
    results = enqueue_many(task, [((str(log), t, t == "m3"), {}) for t in tokens])
    # Each member is a Django process: generous on a loaded machine (not a timing claim).
    wait_until(lambda: all_finished(results), timeout=30 + members * 6)

    assert sorted(lines(log)) == sorted([*tokens, "failed m3"])  # each body once
    assert {r.status for r in results} == {TaskResultStatus.SUCCESSFUL}
    found = job(project, backend)
    assert found.execution_count == 1  # one RunJob
    name = found.latest_created_execution.name
    wait_until(
        lambda: (
            executions_client(backend.emulator).get_execution(name=name).succeeded_count == members
        ),
        timeout=30,
    )
    run = executions_client(backend.emulator).get_execution(name=name)
    assert (run.task_count, run.parallelism) == (members, PARALLELISM)
    assert (run.retried_count, run.failed_count) == (1, 0)  # Cloud Run retried task 3 only
    for token, result in zip(tokens, results, strict=True):
        stored = backend.executions.get(result.id)
        # The claim recorded the dispatch and the shared job execution.
        assert (stored.dispatch_state, stored.cloud_run_execution, stored.attempts) == (
            DispatchState.DISPATCHED,
            name,
            2 if token == "m3" else 1,
        )


def test_a_fan_out_of_20_runs_in_one_job_execution(fan_out_project: str, tmp_path: Path) -> None:
    run_fan_out(fan_out_project, tmp_path, 20)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_fan_out_of_100_runs_in_one_job_execution(fan_out_project: str, tmp_path: Path) -> None:
    run_fan_out(fan_out_project, tmp_path, 100)


def test_members_left_pending_are_found_in_their_job_execution(
    fan_out_project: str, gcloud: GoogleCloudEmulator, tmp_path: Path
) -> None:
    """RunJob started the fan-out but its answer was lost: each member stays PENDING
    with the error; the sweeper's resend finds the job execution, starting none."""
    log = tmp_path / "ran.txt"
    backend: Any = task_backends["cloudjobs"]
    gcloud.faults.fail_next("google.cloud.run.v2.Jobs/RunJob", "DEADLINE_EXCEEDED", after=True)
    record = tasks.record_and_sleep.using(backend="cloudjobs", queue_name=JOB)
    results = enqueue_many(record, [((str(log), f"m{i}", 1), {}) for i in range(10)])
    gcloud.faults.clear()
    pending = [backend.executions.get(r.id) for r in results]
    assert {e.dispatch_state for e in pending} == {DispatchState.PENDING}
    assert all(e.dispatch_error for e in pending)
    # Members 8 and 9 wait for a free task (parallelism 8): still PENDING when swept.
    report = sweep(backend, grace=timedelta(0))
    assert report.dispatched >= 2  # each found in the fan-out's job execution
    found = job(fan_out_project, backend)
    assert found.execution_count == 1  # none started again
    wait_until(lambda: all_finished(results), timeout=90)
    assert sorted(x for x in lines(log) if x.startswith("end")) == sorted(
        f"end m{i}" for i in range(10)
    )
    for result in results:
        stored = backend.executions.get(result.id)
        assert stored.cloud_run_execution == found.latest_created_execution.name
        assert stored.attempts == 1


def test_force_cancelling_a_member_leaves_the_others_running(
    fan_out_project: str, tmp_path: Path
) -> None:
    logs = [tmp_path / f"m{i}.txt" for i in range(3)]
    backend: Any = task_backends["cloudjobs"]
    sleeper = tasks.sleep_then_record.using(backend="cloudjobs", queue_name=JOB)
    results = enqueue_many(sleeper, [((str(log), 4), {}) for log in logs])
    wait_until(lambda: all("started" in lines(log) for log in logs), timeout=60)
    assert cancel_task(results[1], force=True) == CancelOutcome.REQUESTED
    wait_until(lambda: all_finished(results), timeout=60)
    assert [r.status for r in results] == [
        TaskResultStatus.SUCCESSFUL,
        TaskResultStatus.FAILED,
        TaskResultStatus.SUCCESSFUL,
    ]
    # Its heartbeat stopped the cancelled member; the job execution was not cancelled.
    assert "interrupted TaskCancelledError" in lines(logs[1])
    assert results[1].errors[-1].exception_class_path.endswith("TaskCancelledError")
    assert [lines(logs[i])[-1] for i in (0, 2)] == ["finished", "finished"]
    name = job(fan_out_project, backend).latest_created_execution.name
    run = executions_client(backend.emulator).get_execution(name=name)
    assert run.cancelled_count == 0


def test_members_whose_containers_died_are_redispatched_alone(
    fan_out_project: str, tmp_path: Path
) -> None:
    """kill -9 of every task's first attempt, each holding a lease an hour long: the
    tasks' retries meet the live leases and the job execution fails. Once the leases
    expire, the sweeper re-dispatches each member on its own, once."""
    log = tmp_path / "ran.txt"
    backend: Any = task_backends["cloudjobs"]
    dying = tasks.die_holding_a_long_lease.using(backend="cloudjobs", queue_name=JOB)
    results = enqueue_many(dying, [((str(log), f"m{i}"), {}) for i in range(3)])
    name = job(fan_out_project, backend).latest_created_execution.name
    client = executions_client(backend.emulator)
    wait_until(lambda: client.get_execution(name=name).failed_count == 3, timeout=90)
    assert sorted(lines(log)) == ["died m0", "died m1", "died m2"]
    store = backend.executions
    for result in results:
        assert store.get(result.id).status == TaskResultStatus.RUNNING
        store.documents.update(  # an hour later
            store.collection_name,
            result.id,
            {"lease_expires_at": store.clock.now() - timedelta(seconds=1)},
        )
    assert sweep(backend, grace=timedelta(0)).redispatched == 3
    assert sweep(backend, grace=timedelta(0)).redispatched == 0  # each re-sent once
    wait_until(lambda: all_finished(results), timeout=90)
    assert sorted(lines(log)) == ["died m0", "died m1", "died m2", "m0", "m1", "m2"]
    assert job(fan_out_project, backend).execution_count == 1 + 3  # one job execution each
    for result in results:
        stored = store.get(result.id)
        assert (stored.status, stored.attempts) == (TaskResultStatus.SUCCESSFUL, 2)
        assert stored.cloud_run_execution != name
