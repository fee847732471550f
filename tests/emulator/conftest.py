"""One Google Cloud emulator for the session; clients on a fresh channel per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.cloud import run_v2, scheduler_v1, tasks_v2
from google.cloud.run_v2.services.executions.transports import ExecutionsGrpcTransport
from google.cloud.run_v2.services.jobs.transports import JobsGrpcTransport
from google.cloud.scheduler_v1.services.cloud_scheduler.transports import (
    CloudSchedulerGrpcTransport,
)
from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

from django_tasks_fs.emulators.gcloud import GoogleCloudEmulator

from .support import RecordingTarget

KILL_GRACE = 2.0


@pytest.fixture(scope="session")
def gcloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GoogleCloudEmulator]:
    """The emulator, with second-level crons allowed and job logs in a temp folder."""
    root = tmp_path_factory.mktemp("gcloud")
    with GoogleCloudEmulator(
        cwd=root, log_dir=root / "logs", seconds_cron=True, kill_grace=KILL_GRACE
    ) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def _no_faults(gcloud: GoogleCloudEmulator) -> Iterator[None]:
    yield
    gcloud.faults.clear()


@pytest.fixture
def channel(gcloud: GoogleCloudEmulator) -> Iterator[grpc.Channel]:
    channel = grpc.insecure_channel(gcloud.grpc_host)
    yield channel
    channel.close()


@pytest.fixture
def location() -> str:
    """A location in a project of its own, so tests never see each other's resources."""
    return f"projects/test-{uuid.uuid4().hex[:10]}/locations/europe-west1"


@pytest.fixture
def tasks(channel: grpc.Channel) -> Any:
    return tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))


@pytest.fixture
def scheduler(channel: grpc.Channel) -> Any:
    return scheduler_v1.CloudSchedulerClient(transport=CloudSchedulerGrpcTransport(channel=channel))


@pytest.fixture
def jobs(channel: grpc.Channel) -> Any:
    return run_v2.JobsClient(transport=JobsGrpcTransport(channel=channel))


@pytest.fixture
def executions(channel: grpc.Channel) -> Any:
    return run_v2.ExecutionsClient(transport=ExecutionsGrpcTransport(channel=channel))


@pytest.fixture
def target() -> Iterator[RecordingTarget]:
    server = RecordingTarget()
    yield server
    server.close()


@pytest.fixture
def workdir(gcloud: GoogleCloudEmulator) -> Path:
    """The folder job processes run in."""
    return gcloud.executor.cwd
