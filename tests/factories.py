"""Documents and Google Cloud resources the tests and the campaign set up directly."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from django_tasks_fs.gcp.clients import jobs_client, tasks_client
from django_tasks_fs.store import ExecutionStore, TaskExecution, new_execution_id

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCATION = "us-central1"
JOB = "e2e-job"  #: the cloudjobs backend's queue (tests/settings.py)


def python_path(*folders: Path) -> str:
    """PYTHONPATH for a subprocess: ``folders`` (default: the checkout), then what ours
    already holds (the shifted-clock run puts its libfaketime workaround there)."""
    inherited = os.environ.get("PYTHONPATH", "")
    return os.pathsep.join([str(f) for f in folders or (REPO_ROOT,)] + [inherited])


def write_execution(
    store: ExecutionStore, *, ago: timedelta = timedelta(0), **overrides: Any
) -> TaskExecution:
    """Write an execution straight to Firestore (READY, due, nothing dispatched): what a
    crash or a dead worker left behind ``ago``, or the input of an endpoint under test."""
    when = store.clock.now() - ago
    values: dict[str, Any] = {
        "id": new_execution_id(),
        "task_path": "tests.tasks.noop",
        "backend": "default",
        "queue_name": "default",
        "enqueued_at": when,
        "run_after": when,
        "max_attempts": 3,
    }
    return store.create(TaskExecution(**{**values, **overrides}))


def create_queue(
    gcloud_host: str, project: str, *, max_attempts: int, max_backoff: float = 0.3
) -> None:
    """The Cloud Tasks queue ``default``, retrying quickly (0.1 s up to ``max_backoff``)."""
    parent = f"projects/{project}/locations/{LOCATION}"
    tasks_client(gcloud_host).create_queue(
        parent=parent,
        queue={
            "name": f"{parent}/queues/default",
            "retry_config": {
                "max_attempts": max_attempts,
                "min_backoff": timedelta(seconds=0.1),
                "max_backoff": timedelta(seconds=max_backoff),
            },
        },
    )


def create_job(gcloud: Any, project: str, *, max_retries: int, parallelism: int = 0) -> None:
    """The Cloud Run job of the ``cloudjobs`` backend; its ``execute_task`` containers
    reach this test's Firestore project and Google Cloud emulator. ``parallelism``: the
    most tasks of one job execution running at once (0: all)."""
    env = {
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "TEST_FIRESTORE_PROJECT": project,
        "FIRESTORE_EMULATOR_HOST": os.environ["FIRESTORE_EMULATOR_HOST"],
        "PYTHONPATH": python_path(),
        "TEST_GCLOUD_HOST": gcloud.grpc_host,
        "TEST_CERTS_URL": gcloud.certs_url,
    }
    container = {"image": "app", "env": [{"name": k, "value": v} for k, v in env.items()]}
    jobs_client(gcloud.grpc_host).create_job(
        parent=f"projects/{project}/locations/{LOCATION}",
        job_id=JOB,
        job={
            "template": {
                "task_count": 1,
                "parallelism": parallelism,
                "template": {"max_retries": max_retries, "containers": [container]},
            }
        },
    ).result(timeout=30)
