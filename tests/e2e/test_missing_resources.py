"""A Cloud Tasks queue or Cloud Run job that does not exist: enqueue() names it and the
command that creates it, nothing is left READY (nor re-sent by the sweeper), no
traceback is logged; ``check --deploy`` lists what is missing. Against this project's
Google Cloud emulator, through the official clients."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.core import checks
from django.tasks import TaskResultStatus, task_backends

from django_tasks_fs import enqueue_many
from django_tasks_fs.checks import missing_resources
from django_tasks_fs.dispatching import sweep
from django_tasks_fs.emulators.gcloud.server import GoogleCloudEmulator
from django_tasks_fs.exceptions import MissingCloudResource
from django_tasks_fs.gcp.clients import tasks_client
from django_tasks_fs.store import DispatchState
from tests import tasks
from tests.factories import JOB, LOCATION, create_job, create_queue, write_execution
from tests.settings import tasks_setting


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    logged = [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    assert logged == [], [r.getMessage() for r in logged]


def stored(alias: str) -> list[Any]:
    return task_backends[alias].executions.page(limit=100).items  # type: ignore[attr-defined, no-any-return]


def test_enqueue_to_a_missing_queue_names_it_and_how_to_create_it(
    bare_project: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="django_tasks_fs")
    with pytest.raises(MissingCloudResource) as failure:
        tasks.noop.using(backend="cloud").enqueue()
    message = str(failure.value)
    path = f"projects/{bare_project}/locations/{LOCATION}/queues/default"
    command = f"gcloud tasks queues create default --location={LOCATION} --project={bare_project}"
    assert message.startswith(
        f"The Cloud Tasks queue 'default' does not exist in project {bare_project!r}, "
        f"location {LOCATION!r} ({path}). Create it with: {command} "
    )
    assert failure.value.resource == path
    assert failure.value.command == command
    assert failure.value.execution_id == ""  # found before the write: nothing written
    assert stored("cloud") == []
    no_tracebacks(caplog)


def test_enqueue_many_to_a_missing_queue_writes_nothing(bare_project: str) -> None:
    with pytest.raises(MissingCloudResource) as failure:
        enqueue_many(tasks.noop.using(backend="cloud"), [((), {})] * 5)
    assert failure.value.execution_id == ""
    assert stored("cloud") == []


def test_enqueue_to_a_missing_cloud_run_job_names_it(
    bare_project: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="django_tasks_fs")
    with pytest.raises(MissingCloudResource) as failure:
        tasks.noop.using(backend="cloudjobs", queue_name=JOB).enqueue()
    assert str(failure.value).startswith(
        f"The Cloud Run job {JOB!r} does not exist in project {bare_project!r}, region "
        f"{LOCATION!r} (projects/{bare_project}/locations/{LOCATION}/jobs/{JOB}). "
        f"Create it with: gcloud run jobs create {JOB} --image=IMAGE --region={LOCATION} "
        f"--project={bare_project} --args="
    )
    assert stored("cloudjobs") == []
    no_tracebacks(caplog)


def test_a_queue_gone_after_its_retry_limit_was_cached_fails_the_execution(
    bare_project: str, settings: Any, gcloud: GoogleCloudEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    """The queue is found missing only when the task is sent (the retry limit came from
    the cache): the execution is closed FAILED with the error, and the sweeper leaves it."""
    options = settings.TASKS["cloud"]["OPTIONS"]
    options.update(cache_ttl_max_attempts=600, cache_prefix=f"t-{uuid.uuid4().hex}")
    settings.TASKS = {**settings.TASKS}  # reload the backends with the cache on
    create_queue(gcloud.grpc_host, bare_project, max_attempts=3)
    tasks.noop.using(backend="cloud").enqueue()  # caches the queue's retry limit
    path = f"projects/{bare_project}/locations/{LOCATION}/queues/default"
    tasks_client(gcloud.grpc_host).delete_queue(name=path)
    caplog.set_level(logging.DEBUG, logger="django_tasks_fs")

    with pytest.raises(MissingCloudResource) as failure:
        tasks.noop.using(backend="cloud").enqueue()
    execution_id = failure.value.execution_id
    assert execution_id
    assert f"Execution {execution_id!r} was recorded as FAILED" in str(failure.value)
    backend: Any = task_backends["cloud"]
    execution = backend.executions.get(execution_id)
    assert execution.status == TaskResultStatus.FAILED
    assert execution.dispatch_state == DispatchState.REFUSED
    assert execution.errors[-1].exception_class_path == (
        "django_tasks_fs.exceptions.MissingCloudResource"
    )
    assert "gcloud tasks queues create default" in execution.errors[-1].traceback
    report = sweep(backend, grace=timedelta(0), stale=timedelta(0))
    assert report.dispatched == 0
    assert backend.executions.get(execution_id).update_time == execution.update_time
    no_tracebacks(caplog)


def test_the_sweeper_closes_what_it_cannot_send_instead_of_resending_forever(
    bare_project: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="django_tasks_fs")
    backend: Any = task_backends["cloud"]
    left = write_execution(
        backend.executions,
        ago=timedelta(minutes=5),
        backend="cloud",
        dispatch_state=DispatchState.PENDING,
    )
    assert sweep(backend).dispatched == 0
    closed = backend.executions.get(left.id)
    assert closed.status == TaskResultStatus.FAILED
    assert closed.dispatch_state == DispatchState.REFUSED
    assert sweep(backend).dispatched == 0  # not found again: nothing to send
    assert backend.executions.get(left.id).update_time == closed.update_time
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "Cloud Tasks queue 'default' does not exist" in warnings[0]
    no_tracebacks(caplog)


def test_the_deployment_check_lists_missing_queues_and_jobs(
    bare_project: str, gcloud: GoogleCloudEmulator
) -> None:
    # These settings point at emulators, which the other deployment checks refuse (E009+).
    everything = checks.run_checks(include_deployment_checks=True, tags=["django_tasks_fs"])
    found = [m for m in everything if m.id == "django_tasks_fs.E008"]
    assert [(m.id, m.obj) for m in found] == [
        ("django_tasks_fs.E008", "TASKS['cloud']"),
        ("django_tasks_fs.E008", "TASKS['cloudjobs']"),
    ]
    queue, job = found
    assert queue.msg == (
        f"The Cloud Tasks queue 'default' needed by backend 'cloud' does not exist "
        f"(projects/{bare_project}/locations/{LOCATION}/queues/default)."
    )
    assert queue.hint is not None
    assert queue.hint.startswith(
        f"Create it with: gcloud tasks queues create default --location={LOCATION} "
        f"--project={bare_project} (this backend uses the local Google Cloud emulator"
    )
    assert "gcloud run jobs create e2e-job" in (job.hint or "")
    # Not part of the everyday checks (they would call Google Cloud).
    assert not [m for m in checks.run_checks() if m.id == "django_tasks_fs.E008"]

    create_queue(gcloud.grpc_host, bare_project, max_attempts=3)
    create_job(gcloud, bare_project, max_retries=1)
    assert missing_resources() == []


def test_the_deployment_check_warns_when_it_cannot_look(project_id: str, settings: Any) -> None:
    """Nothing listens at the emulator address: a warning, within the short timeout."""
    settings.TASKS = tasks_setting(project_id, gcloud_host="127.0.0.1:9")
    found = missing_resources(timeout=1.0)
    assert [m.id for m in found] == ["django_tasks_fs.W001", "django_tasks_fs.W001"]
    assert found[0].msg.startswith(
        f"Could not check that the Cloud Tasks queue "
        f"projects/{project_id}/locations/{LOCATION}/queues/default exists: "
    )
