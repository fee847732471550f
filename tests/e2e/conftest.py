"""End-to-end fixtures: the Django app on a real HTTP server on 127.0.0.1, the Google
Cloud emulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from django_tasks_fs.emulators.firestore import FirestoreEmulator
from django_tasks_fs.emulators.gcloud.server import GoogleCloudEmulator
from tests.factories import REPO_ROOT, create_job, create_queue
from tests.live_server import LiveServer
from tests.settings import tasks_setting


@pytest.fixture(scope="session")
def gcloud(firestore_emulator: FirestoreEmulator) -> Iterator[GoogleCloudEmulator]:
    """This project's Google Cloud emulator (Cloud Tasks, Run Jobs, Scheduler) on gRPC."""
    with GoogleCloudEmulator(cwd=REPO_ROOT, kill_grace=5) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def http_server() -> Iterator[LiveServer]:
    with LiveServer() as server:
        yield server


@pytest.fixture
def bare_project(
    project_id: str, settings: Any, http_server: LiveServer, gcloud: GoogleCloudEmulator
) -> str:
    """TASKS pointing at the emulators and the live server; no queue and no job exist yet."""
    settings.TASKS = tasks_setting(
        project_id,
        base_url=f"{http_server.url}/tasks/",
        certs_url=gcloud.certs_url,
        gcloud_host=gcloud.grpc_host,
    )
    return project_id


@pytest.fixture
def cloud_project(bare_project: str, gcloud: GoogleCloudEmulator) -> str:
    """As bare_project, with the queue and the job of tests/settings.py created."""
    create_queue(gcloud.grpc_host, bare_project, max_attempts=3)
    create_job(gcloud, bare_project, max_retries=1)
    return bare_project
