"""Client factory: real Google endpoints, or the local emulator over an insecure channel."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

#: Point every Google Cloud client (not Firestore) at a local emulator, like
#: FIRESTORE_EMULATOR_HOST does for Firestore. The ``emulator_host`` option wins.
EMULATOR_ENV = "DJANGO_TASKS_FS_EMULATOR_HOST"

_clients: dict[tuple[int, str, str | None], Any] = {}
_lock = threading.Lock()


def emulator_host(option: str | None) -> str | None:
    return option or os.environ.get(EMULATOR_ENV) or None


def _cached(kind: str, host: str | None, build: Callable[[], Any]) -> Any:
    # Per process id: gRPC channels must not cross a fork.
    key = (os.getpid(), kind, host)
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = build()
        return client


def _channel(host: str) -> Any:
    import grpc

    return grpc.insecure_channel(host)


def tasks_client(host: str | None) -> Any:
    """A ``tasks_v2.CloudTasksClient``."""

    def build() -> Any:
        from google.cloud import tasks_v2
        from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

        if host:
            return tasks_v2.CloudTasksClient(
                transport=CloudTasksGrpcTransport(channel=_channel(host))
            )
        return tasks_v2.CloudTasksClient()

    return _cached("tasks", host, build)


def scheduler_client(host: str | None) -> Any:
    """A ``scheduler_v1.CloudSchedulerClient``."""

    def build() -> Any:
        from google.cloud import scheduler_v1
        from google.cloud.scheduler_v1.services.cloud_scheduler.transports import (
            CloudSchedulerGrpcTransport,
        )

        if host:
            transport = CloudSchedulerGrpcTransport(channel=_channel(host))
            return scheduler_v1.CloudSchedulerClient(transport=transport)
        return scheduler_v1.CloudSchedulerClient()

    return _cached("scheduler", host, build)


def jobs_client(host: str | None) -> Any:
    """A ``run_v2.JobsClient``."""

    def build() -> Any:
        from google.cloud import run_v2
        from google.cloud.run_v2.services.jobs.transports import JobsGrpcTransport

        if host:
            return run_v2.JobsClient(transport=JobsGrpcTransport(channel=_channel(host)))
        return run_v2.JobsClient()

    return _cached("jobs", host, build)


def executions_client(host: str | None) -> Any:
    """A ``run_v2.ExecutionsClient``."""

    def build() -> Any:
        from google.cloud import run_v2
        from google.cloud.run_v2.services.executions.transports import ExecutionsGrpcTransport

        if host:
            return run_v2.ExecutionsClient(
                transport=ExecutionsGrpcTransport(channel=_channel(host))
            )
        return run_v2.ExecutionsClient()

    return _cached("executions", host, build)
