"""Who records a dispatch: not enqueue() after a successful send (that write raced the
delivery's claim), but the delivery's claim, or the sweeper when a PENDING execution
outlives its grace. The platform is a recording fake here (tests/e2e drives the real
APIs on the emulator)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.tasks import TaskResultStatus, task_backends
from django.utils import timezone

from django_tasks_fs.admin.executions import dispatch_state_label
from django_tasks_fs.dispatching import SweepReport, sweep
from django_tasks_fs.exceptions import GoogleCloudError
from django_tasks_fs.store import DispatchState, TaskExecution
from tests import tasks
from tests.settings import tasks_setting


@pytest.fixture
def cloud(test_store: tuple[str, str], settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The Cloud Tasks backend; ``sends`` lists (execution id, resend) of each send;
    ``failing`` set to an exception makes the next sends raise it."""
    project, store = test_store
    settings.TASKS = tasks_setting(project, store=store)
    backend: Any = task_backends["cloud"]
    backend.sends = []
    backend.failing = None

    def send(execution: TaskExecution, *, resend: bool = False) -> dict[str, str]:
        backend.sends.append((execution.id, resend))
        if backend.failing is not None:
            raise backend.failing
        return {"cloud_task_name": f"projects/p/locations/l/queues/q/tasks/{execution.id}"}

    monkeypatch.setattr(backend, "send", send)
    monkeypatch.setattr(backend, "platform_max_attempts", lambda queue: 3)
    return backend


def test_a_successful_send_writes_nothing_after_the_create(cloud: Any) -> None:
    result = tasks.noop.using(backend="cloud").enqueue()
    stored = cloud.executions.get(result.id)
    assert cloud.sends == [(result.id, False)]
    assert (stored.dispatch_state, stored.dispatch_error, stored.cloud_task_name) == (
        DispatchState.PENDING,
        None,
        None,
    )
    assert stored.dispatched_at is None


def test_a_failed_send_is_recorded_and_cannot_undo_a_delivery(cloud: Any) -> None:
    cloud.failing = GoogleCloudError("UNAVAILABLE")
    failed = tasks.noop.using(backend="cloud").enqueue()
    stored = cloud.executions.get(failed.id)
    assert stored.dispatch_state == DispatchState.PENDING
    assert stored.dispatch_error == "GoogleCloudError: UNAVAILABLE"

    # The send went through after all (its answer was lost) and the delivery claimed it
    # before the error was recorded: the error must not make it PENDING again.
    result = tasks.noop.using(backend="cloud").enqueue()
    cloud.executions.claim(result.id, worker_id="w", lease_duration=timedelta(minutes=1))
    after = cloud.dispatch(cloud.executions.get(result.id))
    assert after.dispatch_state == DispatchState.DISPATCHED
    stored = cloud.executions.get(result.id)
    assert (stored.dispatch_state, stored.dispatch_error) == (DispatchState.DISPATCHED, None)


def test_a_sent_execution_not_yet_delivered_is_sent_again_once(cloud: Any) -> None:
    # run_after hours ahead: nothing tells the sweeper that its send went through.
    later = timezone.now() + timedelta(hours=3)
    result = tasks.noop.using(backend="cloud", run_after=later).enqueue()
    assert sweep(cloud, grace=timedelta(hours=1)) == SweepReport(dispatched=0, redispatched=0)
    assert sweep(cloud, grace=timedelta(0)) == SweepReport(dispatched=1, redispatched=0)
    stored = cloud.executions.get(result.id)
    assert stored.dispatch_state == DispatchState.DISPATCHED
    assert stored.dispatched_at is not None
    assert stored.cloud_task_name == f"projects/p/locations/l/queues/q/tasks/{result.id}"
    # Later sweeps leave it alone: not PENDING, and not abandoned before its time.
    for _ in range(3):
        assert sweep(cloud, grace=timedelta(0)) == SweepReport(dispatched=0, redispatched=0)
    assert cloud.sends == [(result.id, False), (result.id, True)]
    assert cloud.executions.get(result.id).update_time == stored.update_time


def test_a_failed_resend_stays_pending_for_the_next_sweep(cloud: Any) -> None:
    result = tasks.noop.using(backend="cloud").enqueue()
    cloud.failing = GoogleCloudError("UNAVAILABLE")
    assert sweep(cloud, grace=timedelta(0)).dispatched == 0
    assert cloud.executions.get(result.id).dispatch_state == DispatchState.PENDING
    cloud.failing = None
    assert sweep(cloud, grace=timedelta(0)).dispatched == 1
    assert cloud.executions.get(result.id).dispatch_state == DispatchState.DISPATCHED


def test_an_execution_cancelled_before_its_delivery_is_settled_not_sent(cloud: Any) -> None:
    result = tasks.noop.using(backend="cloud").enqueue()
    cloud.executions.cancel(result.id)
    assert sweep(cloud, grace=timedelta(0)) == SweepReport(dispatched=0, redispatched=0)
    assert cloud.executions.get(result.id).dispatch_state == DispatchState.DISPATCHED
    assert cloud.sends == [(result.id, False)]


def test_delivery_names_come_from_what_each_platform_hands_its_delivery(
    cloud: Any, settings: Any
) -> None:
    jobs: Any = task_backends["cloudjobs"]
    local: Any = task_backends["default"]
    project = cloud.cloud.project_id
    headers = {"X-CloudTasks-QueueName": "emails", "X-CloudTasks-TaskName": "abc-r1"}
    assert cloud.delivery_names(headers) == {
        "cloud_task_name": f"projects/{project}/locations/us-central1/queues/emails/tasks/abc-r1"
    }
    env = {"CLOUD_RUN_JOB": "e2e-job", "CLOUD_RUN_EXECUTION": "e2e-job-9xk2"}
    assert jobs.delivery_names(env) == {
        "cloud_run_execution": (
            f"projects/{project}/locations/us-central1/jobs/e2e-job/executions/e2e-job-9xk2"
        )
    }
    assert local.delivery_names(env) == {}  # a local job runner's variables name no job
    for bad in ({}, {"X-CloudTasks-QueueName": "q"}, {**headers, "X-CloudTasks-TaskName": "a/b"}):
        assert cloud.delivery_names(bad) == {}
    assert jobs.delivery_names({**env, "CLOUD_RUN_JOB": "../x"}) == {}


def test_the_admin_says_what_a_pending_dispatch_means(cloud: Any) -> None:
    sent = cloud.executions.get(tasks.noop.using(backend="cloud").enqueue().id)
    assert dispatch_state_label(sent).startswith("PENDING: sent, awaiting its first delivery")
    failed = sent.evolve(dispatch_error="GoogleCloudError: UNAVAILABLE")
    assert dispatch_state_label(failed) == "PENDING: the send failed; the sweeper sends it again"
    for plain in (
        sent.evolve(dispatch_state=DispatchState.DISPATCHED),
        sent.evolve(status=TaskResultStatus.FAILED),
    ):
        assert dispatch_state_label(plain) == str(plain.dispatch_state)


def test_the_sweepers_record_carries_the_backend(
    cloud: Any, caplog: pytest.LogCaptureFixture
) -> None:
    tasks.noop.using(backend="cloud").enqueue()
    with caplog.at_level("INFO", logger="django_tasks_fs.dispatching"):
        assert sweep(cloud, grace=timedelta(0)).dispatched == 1
    (record,) = [r for r in caplog.records if r.name == "django_tasks_fs.dispatching"]
    assert record.getMessage().startswith("sweep backend=cloud pending=1 dispatched=1")
    assert record.backend == "cloud"  # type: ignore[attr-defined]
