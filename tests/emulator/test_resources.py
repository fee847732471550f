"""``manage.py tasks_resources plan|apply`` against this project's Google Cloud emulator,
through the official clients: plan shows the diff, apply converges, a second apply is a
no-op, plan then finds nothing; a job that does not exist is reported, not invented; an
unreachable API is a clear error."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.tasks import task_backends

from django_tasks_fs.emulators import provisioning
from django_tasks_fs.emulators.gcloud import GoogleCloudEmulator
from django_tasks_fs.gcp.clients import jobs_client, tasks_client
from tests import tasks

LOCATION = "europe-west1"
CLOUD = "django_tasks_fs.backends.CloudTasksBackend"
JOBS = "django_tasks_fs.backends.CloudRunJobsBackend"
LOCMEM = "django.core.cache.backends.locmem.LocMemCache"


def backends(project: str, host: str, **declared: Any) -> dict[str, Any]:
    """A Cloud Tasks backend (queues default and emails) and a Cloud Run Jobs backend
    (job batch), in this process's memory, sending to the emulator at ``host``."""
    common = {
        "project_id": project,
        "store": "memory",
        "location": LOCATION,
        "base_url": "http://127.0.0.1:8000/tasks/",
        "oidc_service_account": "invoker@p.iam.gserviceaccount.com",
        "emulator_host": host,
    }
    return {
        "cloud": {
            "BACKEND": CLOUD,
            "QUEUES": ["default", "emails"],
            "OPTIONS": {**common, "queue_settings": declared.get("queues", {})},
        },
        "batch": {
            "BACKEND": JOBS,
            "QUEUES": ["batch"],
            "OPTIONS": {**common, "job_settings": declared.get("jobs", {})},
        },
    }


QUEUES = {
    "*": {"retry_config": {"max_attempts": 5, "min_backoff": 1, "max_backoff": 60}},
    "emails": {
        "rate_limits": {"max_dispatches_per_second": 2.5, "max_concurrent_dispatches": 3},
        "retry_config": {"max_doublings": 4, "max_retry_duration": timedelta(hours=1)},
        "dispatch_deadline": 1200,
    },
}
JOB_SETTINGS = {"batch": {"timeout": 900, "max_retries": 2, "parallelism": 1}}


def run(*args: str) -> str:
    out = StringIO()
    call_command("tasks_resources", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def project(settings: Any, gcloud: GoogleCloudEmulator) -> str:
    """A project of its own holding the job ``batch`` (as the deployment made it) and the
    queue ``default`` (as gcloud made it); ``emails`` does not exist yet."""
    project = f"res-{uuid.uuid4().hex[:10]}"
    parent = f"projects/{project}/locations/{LOCATION}"
    tasks_client(gcloud.grpc_host).create_queue(
        parent=parent, queue={"name": f"{parent}/queues/default"}
    )
    jobs_client(gcloud.grpc_host).create_job(
        parent=parent,
        job_id="batch",
        job={"template": {"template": {"containers": [{"image": "app", "args": ["x"]}]}}},
    ).result(timeout=10)
    settings.TASKS = backends(project, gcloud.grpc_host, queues=QUEUES, jobs=JOB_SETTINGS)
    return project


def queue(gcloud: GoogleCloudEmulator, project: str, name: str) -> Any:
    path = f"projects/{project}/locations/{LOCATION}/queues/{name}"
    return tasks_client(gcloud.grpc_host).get_queue(name=path)


def job(gcloud: GoogleCloudEmulator, project: str) -> Any:
    path = f"projects/{project}/locations/{LOCATION}/jobs/batch"
    return jobs_client(gcloud.grpc_host).get_job(name=path)


def test_plan_shows_the_diff_and_changes_nothing(gcloud: GoogleCloudEmulator, project: str) -> None:
    before = queue(gcloud, project, "default")
    shown = run("plan")
    base = f"projects/{project}/locations/{LOCATION}"
    assert f"~ Cloud Tasks queue {base}/queues/default (TASKS['cloud']): update" in shown
    assert "      retry_config.max_attempts: 100 -> 5" in shown
    assert "      retry_config.min_backoff: 0.1s -> 1s" in shown
    assert "      retry_config.max_backoff: 3600s -> 60s" in shown
    assert f"+ Cloud Tasks queue {base}/queues/emails (TASKS['cloud']): create" in shown
    assert "      rate_limits.max_concurrent_dispatches: 3" in shown
    assert "      retry_config.max_retry_duration: 3600s" in shown
    assert f"~ Cloud Run job {base}/jobs/batch (TASKS['batch']): update" in shown
    assert "      template.template.max_retries: 3 -> 2" in shown
    assert "      template.template.timeout: 600s -> 900s" in shown
    assert "      template.parallelism: 0 -> 1" in shown
    assert "Plan: 1 to create, 2 to update, 0 missing" in shown
    assert "dispatch_deadline" not in shown  # set on each task, not a field of the queue
    assert queue(gcloud, project, "default") == before
    assert job(gcloud, project).template.template.max_retries == 3
    with pytest.raises(CommandError) as drift:
        run("plan", "--exit-code")
    assert drift.value.returncode == 2


def test_apply_converges_and_a_second_apply_is_a_no_op(
    gcloud: GoogleCloudEmulator, project: str, settings: Any
) -> None:
    settings.CACHES = {"default": {"BACKEND": LOCMEM, "LOCATION": uuid.uuid4().hex}}
    cloud, batch = task_backends["cloud"], task_backends["batch"]
    assert cloud.max_attempts_for("default") == 100  # type: ignore[attr-defined]
    assert batch.max_attempts_for("batch") == 4  # type: ignore[attr-defined]
    applied = run("apply")
    base = f"projects/{project}/locations/{LOCATION}"
    assert f"updated Cloud Tasks queue {base}/queues/default" in applied
    assert f"created Cloud Tasks queue {base}/queues/emails" in applied
    assert f"updated Cloud Run job {base}/jobs/batch" in applied

    default, emails = queue(gcloud, project, "default"), queue(gcloud, project, "emails")
    assert default.retry_config.max_attempts == 5
    assert default.retry_config.min_backoff == timedelta(seconds=1)
    assert default.retry_config.max_backoff == timedelta(seconds=60)
    assert default.rate_limits.max_concurrent_dispatches == 1000  # not declared: untouched
    assert emails.rate_limits.max_dispatches_per_second == 2.5
    assert emails.rate_limits.max_concurrent_dispatches == 3
    assert emails.retry_config.max_doublings == 4
    assert emails.retry_config.max_retry_duration == timedelta(hours=1)
    assert emails.retry_config.max_attempts == 5
    found = job(gcloud, project)
    assert found.template.template.max_retries == 2
    assert found.template.template.timeout == timedelta(seconds=900)
    assert found.template.parallelism == 1
    assert list(found.template.template.containers[0].args) == ["x"]  # the rest as it was
    generation = found.generation
    # The cached retry limits were dropped: the backends read the new ones.
    assert cloud.max_attempts_for("default") == 5  # type: ignore[attr-defined]
    assert batch.max_attempts_for("batch") == 3  # type: ignore[attr-defined]

    again = run("apply")
    assert "No changes: the live queues and jobs match TASKS." in again
    assert "updated" not in again
    assert "created" not in again
    assert job(gcloud, project).generation == generation
    assert run("plan", "--exit-code").count("up to date") == 3


def test_apply_changes_only_the_declared_fields(
    gcloud: GoogleCloudEmulator, project: str, settings: Any
) -> None:
    run("apply")
    # Someone tunes a field by hand that TASKS does not declare: apply leaves it.
    live = queue(gcloud, project, "default")
    live.rate_limits.max_concurrent_dispatches = 7
    tasks_client(gcloud.grpc_host).update_queue(
        queue=live, update_mask={"paths": ["rate_limits.max_concurrent_dispatches"]}
    )
    declared = {**QUEUES, "default": {"retry_config": {"max_attempts": -1}}}
    settings.TASKS = backends(project, gcloud.grpc_host, queues=declared, jobs=JOB_SETTINGS)
    shown = run("plan")
    assert "      retry_config.max_attempts: 5 -> -1" in shown
    assert "max_concurrent_dispatches" not in shown
    run("apply")
    after = queue(gcloud, project, "default")
    assert after.retry_config.max_attempts == -1
    assert after.rate_limits.max_concurrent_dispatches == 7
    assert after.retry_config.max_backoff == timedelta(seconds=60)


def test_a_declared_dispatch_deadline_is_set_on_each_task(
    gcloud: GoogleCloudEmulator, project: str
) -> None:
    run("apply")
    later = datetime.now(UTC) + timedelta(hours=1)  # not delivered during the test
    tasks.noop.using(backend="cloud", queue_name="emails", run_after=later).enqueue()
    tasks.noop.using(backend="cloud", run_after=later).enqueue()
    client = tasks_client(gcloud.grpc_host)
    (mail,) = client.list_tasks(parent=queue(gcloud, project, "emails").name)
    (plain,) = client.list_tasks(parent=queue(gcloud, project, "default").name)
    assert mail.dispatch_deadline == timedelta(seconds=1200)
    assert plain.dispatch_deadline == timedelta(minutes=10)  # Cloud Tasks' default


def test_the_emulators_provisioning_creates_what_tasks_declares(
    gcloud: GoogleCloudEmulator, settings: Any
) -> None:
    """``tasks_emulators`` creates the queues and jobs with the declared settings (local
    defaults for the rest): a plan right after finds nothing to change."""
    project = f"res-{uuid.uuid4().hex[:10]}"
    settings.TASKS = backends(project, gcloud.grpc_host, queues=QUEUES, jobs=JOB_SETTINGS)
    found = provisioning.plan(
        {a: task_backends[a] for a in ("cloud", "batch")},
        certs_url=gcloud.certs_url,
        grpc_host=gcloud.grpc_host,
    )
    lines = provisioning.create(found, gcloud.grpc_host, max_attempts=3, job_env={})
    assert all(line.endswith("with the settings TASKS declares") for line in lines)
    assert run("plan", "--exit-code").count("up to date") == 3
    default = queue(gcloud, project, "default")
    assert default.retry_config.max_attempts == 5  # declared ('*'), not --max-attempts
    assert default.retry_config.max_backoff == timedelta(seconds=60)
    assert job(gcloud, project).template.template.max_retries == 2


def test_a_missing_job_is_reported_with_its_create_command(
    gcloud: GoogleCloudEmulator, settings: Any
) -> None:
    project = f"res-{uuid.uuid4().hex[:10]}"
    settings.TASKS = backends(project, gcloud.grpc_host, jobs=JOB_SETTINGS)
    shown = run("plan", "--backend", "batch")
    assert "! Cloud Run job" in shown
    assert "gcloud run jobs create batch" in shown
    with pytest.raises(CommandError) as failure:
        run("apply", "--backend", "batch")
    assert "Not created (a Cloud Run job needs its image)" in str(failure.value)
    assert "gcloud run jobs create batch --image=IMAGE" in str(failure.value)


def test_a_refused_update_names_the_queue_and_the_permission(
    gcloud: GoogleCloudEmulator, project: str
) -> None:
    gcloud.faults.fail_next("google.cloud.tasks.v2.CloudTasks/UpdateQueue", "PERMISSION_DENIED")
    with pytest.raises(CommandError) as failure:
        run("apply", "--backend", "cloud")
    message = str(failure.value)
    path = f"projects/{project}/locations/{LOCATION}/queues/default"
    assert message.startswith(f"Cloud Tasks update_queue of the Cloud Tasks queue {path} failed")
    assert "The caller needs cloudtasks.queues.get, .create and .update" in message
    assert queue(gcloud, project, "default").retry_config.max_attempts == 100  # unchanged


def test_a_brief_outage_is_retried(gcloud: GoogleCloudEmulator, project: str) -> None:
    gcloud.faults.fail_next("google.cloud.tasks.v2.CloudTasks/GetQueue", "UNAVAILABLE", times=2)
    assert "retry_config.max_attempts: 100 -> 5" in run("plan")
    assert gcloud.faults.pending() == []


def test_without_a_google_cloud_backend_there_is_nothing_to_do(settings: Any) -> None:
    settings.TASKS = {"default": {"BACKEND": "django_tasks_fs.backends.ProcessBackend"}}
    assert run("plan", "--exit-code") == (
        "TASKS has no CloudTasksBackend or CloudRunJobsBackend: nothing to do.\n"
    )


def test_an_unreachable_api_is_a_clear_error(settings: Any) -> None:
    settings.TASKS = backends("nowhere", "127.0.0.1:9", queues=QUEUES)
    with pytest.raises(CommandError) as failure:
        run("plan", "--backend", "cloud", "--timeout", "1")
    message = str(failure.value)
    assert message.startswith(
        "Cloud Tasks get_queue of the Cloud Tasks queue "
        f"projects/nowhere/locations/{LOCATION}/queues/default failed"
    )
    assert "The Google Cloud emulator at '127.0.0.1:9' did not answer within 1 s" in message
