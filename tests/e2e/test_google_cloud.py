"""The production path on one machine: the official Google clients talk to the local
Google Cloud emulator, which delivers back over HTTP to the app on a real server;
state lives in the Firestore emulator."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.tasks import TaskResultStatus, task_backends
from django.utils import timezone
from google.cloud import scheduler_v1, tasks_v2

from django_tasks_fs import (
    cancel_task,
    delete_scheduled_task,
    enqueue_many,
    rename_scheduled_task,
    schedule_task,
)
from django_tasks_fs.dispatching import SweepReport, sweep
from django_tasks_fs.emulators.gcloud.server import GoogleCloudEmulator
from django_tasks_fs.gcp.clients import (
    executions_client,
    jobs_client,
    scheduler_client,
    tasks_client,
)
from django_tasks_fs.store import CancelOutcome, DispatchState, TaskExecution
from tests import tasks, tokens
from tests.conftest import wait_until
from tests.factories import LOCATION, write_execution
from tests.live_server import LiveServer


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def finished(result: Any) -> bool:
    result.refresh()
    return bool(result.is_finished)


def test_success_is_delivered_over_http(cloud_project: str, tmp_path: Path) -> None:
    log = tmp_path / "ran.txt"
    result = tasks.record.using(backend="cloud").enqueue(str(log), "hello")
    cloud: Any = task_backends["cloud"]
    wait_until(lambda: finished(result), timeout=30)
    # Nothing was written after the send: the delivery's claim recorded the dispatch.
    stored = cloud.executions.get(result.id)
    assert stored.dispatch_state == DispatchState.DISPATCHED
    assert (
        stored.cloud_task_name
        == f"projects/{cloud_project}/locations/{LOCATION}/queues/default/tasks/{result.id}"
    )
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == "hello"
    assert result.worker_ids == [f"cloud-tasks:{result.id}"]
    assert lines(log) == ["hello"]


def test_retries_to_exhaustion_follow_the_queue(cloud_project: str) -> None:
    result = tasks.failing.using(backend="cloud").enqueue("nope")
    assert task_backends["cloud"].executions.get(result.id).max_attempts == 3  # type: ignore[attr-defined]
    wait_until(lambda: finished(result), timeout=30)
    assert result.status == TaskResultStatus.FAILED
    assert result.attempts == 3
    assert [e.exception_class_path for e in result.errors] == ["builtins.ValueError"] * 3


def test_deferred_task_runs_after_its_time(cloud_project: str, tmp_path: Path) -> None:
    log = tmp_path / "ran.txt"
    when = timezone.now() + timedelta(seconds=2)
    result = tasks.record.using(backend="cloud", run_after=when).enqueue(str(log), "later")
    wait_until(lambda: finished(result), timeout=30)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.started_at is not None
    assert result.started_at >= when


def test_a_task_deferred_past_the_grace_is_sent_again_once(
    cloud_project: str, tmp_path: Path
) -> None:
    # Sent, but not delivered before the sweeper's grace: PENDING is all Firestore knows.
    cloud: Any = task_backends["cloud"]
    when = timezone.now() + timedelta(hours=3)
    result = tasks.record.using(backend="cloud", run_after=when).enqueue(str(tmp_path), "x")
    assert cloud.executions.get(result.id).dispatch_state == DispatchState.PENDING
    # The re-send meets ALREADY_EXISTS (one task, its name): confirmed DISPATCHED.
    assert sweep(cloud, grace=timedelta(0)) == SweepReport(dispatched=1, redispatched=0)
    stored = cloud.executions.get(result.id)
    assert stored.dispatch_state == DispatchState.DISPATCHED
    queue = f"projects/{cloud_project}/locations/{LOCATION}/queues/default"
    assert [t.name for t in tasks_client(cloud.emulator).list_tasks(parent=queue)] == [
        f"{queue}/tasks/{result.id}"
    ]
    # Never again, and not taken for abandoned before its time.
    assert sweep(cloud, grace=timedelta(0)) == SweepReport(dispatched=0, redispatched=0)
    assert cloud.executions.get(result.id).update_time == stored.update_time


def test_graceful_cancel_over_cloud_tasks(cloud_project: str, tmp_path: Path) -> None:
    log = tmp_path / "ran.txt"
    result = tasks.wait_for_cancel.using(backend="cloud").enqueue(str(log))
    wait_until(lambda: "started" in lines(log), timeout=30)
    assert cancel_task(result) == CancelOutcome.REQUESTED
    wait_until(lambda: finished(result), timeout=30)
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[-1].exception_class_path == "django_tasks_fs.exceptions.TaskCancelledError"
    assert "noticed cancel" in lines(log)


def test_cloud_run_job_success_and_forceful_cancel(cloud_project: str, tmp_path: Path) -> None:
    log = tmp_path / "ran.txt"
    done = tasks.record.using(backend="cloudjobs", queue_name="e2e-job").enqueue(str(log), "job")
    jobs: Any = task_backends["cloudjobs"]
    assert jobs.executions.get(done.id).max_attempts == 2  # max_retries + 1
    wait_until(lambda: finished(done), timeout=60)
    assert done.status == TaskResultStatus.SUCCESSFUL
    # The job's claim recorded the dispatch and its job execution (CLOUD_RUN_EXECUTION).
    stored = jobs.executions.get(done.id)
    assert stored.dispatch_state == DispatchState.DISPATCHED
    job = jobs_client(jobs.emulator).get_job(
        name=f"projects/{cloud_project}/locations/{LOCATION}/jobs/e2e-job"
    )
    assert stored.cloud_run_execution == job.latest_created_execution.name

    slow = tasks.sleep_then_record.using(backend="cloudjobs", queue_name="e2e-job").enqueue(
        str(log), 60
    )
    wait_until(lambda: "started" in lines(log), timeout=60)
    assert cancel_task(slow, force=True) == CancelOutcome.REQUESTED
    wait_until(lambda: finished(slow), timeout=60)
    assert slow.status == TaskResultStatus.FAILED
    assert slow.errors[-1].exception_class_path == "django_tasks_fs.exceptions.TaskCancelledError"
    assert "interrupted TaskCancelledError" in lines(log)
    name = jobs.executions.get(slow.id).cloud_run_execution
    wait_until(
        lambda: executions_client(jobs.emulator).get_execution(name=name).cancelled_count == 1,
        timeout=30,
    )


def test_crash_between_write_and_dispatch_is_recovered_by_the_sweeper(
    cloud_project: str, gcloud: GoogleCloudEmulator, tmp_path: Path
) -> None:
    log = tmp_path / "ran.txt"
    cloud: Any = task_backends["cloud"]
    # 1. A process died right after the Firestore write: nothing was sent.
    crashed = write_execution(
        cloud.executions,
        task_path="tests.tasks.record",
        backend="cloud",
        args=[str(log), "crashed"],
        dispatch_state=DispatchState.PENDING,
    )
    # 2. The API failed: the state says so.
    gcloud.faults.fail_next("google.cloud.tasks.v2.CloudTasks/CreateTask", "UNAVAILABLE", times=10)
    failed = tasks.record.using(backend="cloud").enqueue(str(log), "api-error")
    gcloud.faults.clear()
    stored = cloud.executions.get(failed.id)
    assert stored.dispatch_state == DispatchState.PENDING
    assert "UNAVAILABLE" in (stored.dispatch_error or "") or "503" in (stored.dispatch_error or "")
    assert sweep(cloud, grace=timedelta(0)).dispatched == 2
    for execution_id in (crashed.id, failed.id):
        wait_until(
            lambda i=execution_id: cloud.executions.get(i).status == TaskResultStatus.SUCCESSFUL,
            timeout=30,
        )
    assert sorted(lines(log)) == ["api-error", "crashed"]
    assert sweep(cloud, grace=timedelta(0)).dispatched == 0


def test_a_repeated_dispatch_is_deduplicated(
    cloud_project: str, gcloud: GoogleCloudEmulator, tmp_path: Path
) -> None:
    log = tmp_path / "ran.txt"
    cloud: Any = task_backends["cloud"]
    # The task is created but the answer is lost: the sweeper sends it again.
    gcloud.faults.fail_next(
        "google.cloud.tasks.v2.CloudTasks/CreateTask", "DEADLINE_EXCEEDED", after=True, times=10
    )
    result = tasks.record.using(backend="cloud").enqueue(str(log), "once")
    gcloud.faults.clear()
    # PENDING with the error; or the delivery's claim came first and said DISPATCHED
    # (the error recorded after it does not undo that).
    assert cloud.executions.get(result.id).dispatch_state in (
        DispatchState.PENDING,
        DispatchState.DISPATCHED,
    )
    # ALREADY_EXISTS counts as dispatched.
    sweep(cloud, grace=timedelta(0))
    assert cloud.executions.get(result.id).dispatch_state == DispatchState.DISPATCHED
    wait_until(lambda: finished(result), timeout=30)
    assert lines(log) == ["once"]


def test_a_finished_execution_left_pending_is_settled_by_the_sweeper(
    cloud_project: str, tmp_path: Path
) -> None:
    # Delivered and done, but the answer to the send was lost before it was recorded.
    cloud: Any = task_backends["cloud"]
    done = _stranded(
        cloud,
        tmp_path / "ran.txt",
        "x",
        status=TaskResultStatus.SUCCESSFUL,
        dispatch_state=DispatchState.PENDING,
    )
    assert sweep(cloud, grace=timedelta(0)) == SweepReport(dispatched=0, redispatched=0)
    assert cloud.executions.get(done.id).dispatch_state == DispatchState.DISPATCHED
    assert (
        cloud.executions.pending_dispatch(backend="cloud", older_than=cloud.executions.clock.now())
        == []
    )


@pytest.mark.slow  # waits for the next whole minute
def test_cloud_scheduler_sync_and_a_cron_slot(
    cloud_project: str, gcloud: GoogleCloudEmulator
) -> None:
    client = scheduler_client(gcloud.grpc_host)
    parent = f"projects/{cloud_project}/locations/{LOCATION}"
    item = schedule_task(
        tasks.noop, "* * * * *", name="minutely", backend="cloud", time_zone="Europe/Paris"
    )
    job = client.get_job(name=f"{parent}/jobs/minutely")
    assert item.cloud_scheduler_job == job.name
    assert job.schedule == "* * * * *"
    assert job.time_zone == "Europe/Paris"
    assert job.http_target.uri.endswith("/tasks/schedule/")
    assert (
        job.http_target.oidc_token.service_account_email == "invoker@tests.iam.gserviceaccount.com"
    )
    assert job.state == scheduler_v1.Job.State.ENABLED

    schedule_task(tasks.noop, "*/5 * * * *", name="minutely", backend="cloud", enabled=False)
    job = client.get_job(name=f"{parent}/jobs/minutely")
    assert (job.schedule, job.state) == ("*/5 * * * *", scheduler_v1.Job.State.PAUSED)
    schedule_task(tasks.noop, "* * * * *", name="minutely", backend="cloud")
    assert client.get_job(name=f"{parent}/jobs/minutely").state == scheduler_v1.Job.State.ENABLED

    # The emulator fires the next minute's slot to schedule/, which enqueues it once.
    cloud: Any = task_backends["cloud"]
    wait_until(lambda: cloud.schedules.get("minutely").last_execution_id is not None, timeout=120)
    fired = cloud.executions.get(cloud.schedules.get("minutely").last_execution_id)
    assert fired.scheduled_task == "minutely"
    wait_until(
        lambda: cloud.executions.get(fired.id).status == TaskResultStatus.SUCCESSFUL, timeout=30
    )

    renamed = rename_scheduled_task("minutely", "every-minute")
    assert renamed.cloud_scheduler_job == f"{parent}/jobs/every-minute"
    names = [j.name for j in client.list_jobs(parent=parent)]
    assert names == [f"{parent}/jobs/every-minute"]  # the old job no longer fires
    assert delete_scheduled_task("every-minute")
    assert list(client.list_jobs(parent=parent)) == []


def test_queue_retry_limit_is_read_through_the_official_client(
    cloud_project: str, gcloud: GoogleCloudEmulator
) -> None:
    cloud: Any = task_backends["cloud"]
    assert cloud.max_attempts_for("default") == 3
    queue = tasks_v2.Queue(
        name=f"projects/{cloud_project}/locations/{LOCATION}/queues/unlimited",
        retry_config={"max_attempts": -1},
    )
    tasks_client(gcloud.grpc_host).create_queue(
        parent=f"projects/{cloud_project}/locations/{LOCATION}", queue=queue
    )
    assert cloud.max_attempts_for("unlimited") is None
    jobs: Any = task_backends["cloudjobs"]
    assert jobs.max_attempts_for("e2e-job") == 2


def test_a_job_whose_container_died_is_redispatched_by_the_sweeper(
    cloud_project: str, tmp_path: Path
) -> None:
    # Attempt 1 is killed holding a lease an hour long; the job's one retry meets the live
    # lease and gives up: the execution is left RUNNING with nobody to finish it. (With
    # the usual 2 s lease, whether the retry meets it or takes over would depend on how
    # fast the retry's process starts.) Then the hour "passes" and the sweeper rescues it.
    log = tmp_path / "ran.txt"
    jobs: Any = task_backends["cloudjobs"]
    result = tasks.die_holding_a_long_lease.using(
        backend="cloudjobs", queue_name="e2e-job"
    ).enqueue(str(log), "second")
    # The first attempt's claim records the job execution running it.
    wait_until(lambda: jobs.executions.get(result.id).cloud_run_execution, timeout=60)
    first_run = jobs.executions.get(result.id).cloud_run_execution
    client = executions_client(jobs.emulator)
    wait_until(lambda: client.get_execution(name=first_run).failed_count == 1, timeout=60)
    assert lines(log) == ["died second"]
    assert jobs.executions.get(result.id).status == TaskResultStatus.RUNNING
    assert sweep(jobs, grace=timedelta(0)).redispatched == 0  # the lease is live
    store = jobs.executions
    store.documents.update(  # an hour later
        store.collection_name,
        result.id,
        {"lease_expires_at": store.clock.now() - timedelta(seconds=1)},
    )
    assert sweep(jobs, grace=timedelta(0)).redispatched == 1
    assert sweep(jobs, grace=timedelta(0)).redispatched == 0  # this attempt is re-sent once
    wait_until(lambda: finished(result), timeout=60)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert lines(log) == ["died second", "second"]
    stored = jobs.executions.get(result.id)
    assert stored.attempts == 2
    assert stored.errors[0].exception_class_path == "django_tasks_fs.exceptions.WorkerLost"
    assert stored.cloud_run_execution != first_run


def test_an_abandoned_cloud_task_is_redispatched_under_a_new_name(
    cloud_project: str, tmp_path: Path
) -> None:
    # What a dead worker leaves once Cloud Tasks has spent its attempts on the live lease.
    log = tmp_path / "ran.txt"
    cloud: Any = task_backends["cloud"]
    abandoned = _stranded(
        cloud,
        log,
        "rescued",
        ago=timedelta(seconds=1),
        status=TaskResultStatus.RUNNING,
        attempts=1,
        lease_owner="dead-worker",
        lease_expires_at=cloud.executions.clock.now() - timedelta(seconds=1),
        dispatch_state=DispatchState.DISPATCHED,
    )
    assert sweep(cloud, grace=timedelta(seconds=30)).redispatched == 0  # expired too recently
    assert sweep(cloud, grace=timedelta(0)).redispatched == 1
    wait_until(
        lambda: cloud.executions.get(abandoned.id).status == TaskResultStatus.SUCCESSFUL,
        timeout=30,
    )
    stored = cloud.executions.get(abandoned.id)
    assert stored.cloud_task_name.endswith(f"/tasks/{abandoned.id}-r1")
    assert (stored.attempts, stored.redispatches) == (2, 1)
    assert lines(log) == ["rescued"]
    assert sweep(cloud, grace=timedelta(0)) == SweepReport(dispatched=0, redispatched=0)


def _stranded(
    cloud: Any, log: Path, token: str, *, ago: timedelta = timedelta(minutes=2), **state: Any
) -> TaskExecution:
    """An execution as a crash left it ``ago`` (by default older than the sweep's grace)."""
    return write_execution(
        cloud.executions,
        ago=ago,
        task_path="tests.tasks.record",
        backend="cloud",
        args=[str(log), token],
        **state,
    )


def _post_sweep(url: str, token: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, data=b"", headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), {}


def test_the_sweep_endpoint_over_http(
    cloud_project: str, gcloud: GoogleCloudEmulator, http_server: LiveServer, tmp_path: Path
) -> None:
    log = tmp_path / "ran.txt"
    cloud: Any = task_backends["cloud"]
    pending = _stranded(cloud, log, "pending", dispatch_state=DispatchState.PENDING)
    then = pending.enqueued_at
    abandoned = _stranded(
        cloud,
        log,
        "abandoned",
        dispatch_state=DispatchState.DISPATCHED,
        status=TaskResultStatus.RUNNING,
        attempts=1,
        lease_owner="dead-worker",
        lease_expires_at=then,
    )
    url = f"{http_server.url}/tasks/sweep/"
    assert gcloud.issuer is not None
    assert _post_sweep(url, None)[0] == 401
    assert _post_sweep(url, tokens.sign(gcloud.issuer, aud="https://elsewhere"))[0] == 401
    assert cloud.executions.get(pending.id) == pending  # refused callers changed nothing
    status, body = _post_sweep(url, tokens.sign(gcloud.issuer, aud=cloud.audience))
    assert status == 200
    assert body["dispatched"]["cloud"] == 1
    assert body["redispatched"]["cloud"] == 1
    for execution in (pending, abandoned):
        wait_until(
            lambda i=execution.id: cloud.executions.get(i).status == TaskResultStatus.SUCCESSFUL,
            timeout=30,
        )
    assert sorted(lines(log)) == ["abandoned", "pending"]


def test_the_sweep_tasks_command(cloud_project: str, tmp_path: Path) -> None:
    cloud: Any = task_backends["cloud"]
    pending = _stranded(cloud, tmp_path / "ran.txt", "x", dispatch_state=DispatchState.PENDING)
    out = io.StringIO()
    call_command("sweep_tasks", "--backend", "cloud", stdout=out)
    assert out.getvalue() == "cloud: dispatched 1, re-dispatched 0\n"
    assert cloud.executions.get(pending.id).dispatch_state == DispatchState.DISPATCHED
    with pytest.raises(CommandError, match="Not GoogleCloudBackend aliases: default"):
        call_command("sweep_tasks", "--backend", "default")


def test_a_job_run_whose_answer_was_lost_is_not_started_twice(
    cloud_project: str, gcloud: GoogleCloudEmulator, tmp_path: Path
) -> None:
    log = tmp_path / "ran.txt"
    jobs: Any = task_backends["cloudjobs"]
    gcloud.faults.fail_next("google.cloud.run.v2.Jobs/RunJob", "DEADLINE_EXCEEDED", after=True)
    result = tasks.record.using(backend="cloudjobs", queue_name="e2e-job").enqueue(str(log), "x")
    gcloud.faults.clear()
    assert jobs.executions.get(result.id).dispatch_state == DispatchState.PENDING
    assert sweep(jobs, grace=timedelta(0)).dispatched == 1  # found the run, started none
    job = jobs_client(gcloud.grpc_host).get_job(
        name=f"projects/{cloud_project}/locations/{LOCATION}/jobs/e2e-job"
    )
    assert job.execution_count == 1
    assert jobs.executions.get(result.id).cloud_run_execution == job.latest_created_execution.name
    wait_until(lambda: finished(result), timeout=60)
    assert lines(log) == ["x"]


def test_enqueue_many_sends_every_task_and_leaves_a_failed_send_pending(
    cloud_project: str, gcloud: GoogleCloudEmulator, tmp_path: Path
) -> None:
    log = tmp_path / "ran.txt"
    cloud: Any = task_backends["cloud"]
    # One CreateTask of the concurrent sends is refused (not retried by the client).
    gcloud.faults.fail_next("google.cloud.tasks.v2.CloudTasks/CreateTask", "PERMISSION_DENIED")
    results = enqueue_many(
        tasks.record.using(backend="cloud"), [((str(log), f"t{i}"), {}) for i in range(40)]
    )
    assert gcloud.faults.pending() == []
    (failed,) = [e for e in map(cloud.executions.get, (r.id for r in results)) if e.dispatch_error]
    assert failed.dispatch_state == DispatchState.PENDING
    assert "PermissionDenied" in failed.dispatch_error or "403" in failed.dispatch_error
    sent = {f"t{i}" for i in range(40)} - {failed.args[1]}
    wait_until(lambda: set(lines(log)) == sent, timeout=60)
    assert len(lines(log)) == 39  # each sent task ran once; the refused one did not run

    assert sweep(cloud, grace=timedelta(0)).dispatched == 1
    wait_until(lambda: len(lines(log)) == 40, timeout=30)
    assert sorted(lines(log)) == sorted(f"t{i}" for i in range(40))
    for result in results:
        wait_until(lambda r=result: finished(r), timeout=30)
        assert result.status == TaskResultStatus.SUCCESSFUL
