"""Fault injection: the next N calls of a method fail with a chosen status."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from google.api_core import exceptions

from django_tasks_fs.emulators.gcloud import GoogleCloudEmulator

from .support import RecordingTarget


def http_task(name: str, url: str) -> dict[str, Any]:
    return {"name": name, "http_request": {"url": url}}


@pytest.fixture
def queue(tasks: Any, location: str) -> Any:
    return tasks.create_queue(parent=location, queue={"name": f"{location}/queues/chaos"})


def test_next_calls_fail_then_succeed(
    gcloud: GoogleCloudEmulator, tasks: Any, queue: Any, target: RecordingTarget
) -> None:
    gcloud.faults.fail_next("CreateTask", "UNAVAILABLE", times=2)
    name = f"{queue.name}/tasks/t"

    for _ in range(2):
        with pytest.raises(exceptions.ServiceUnavailable):
            tasks.create_task(parent=queue.name, task=http_task(name, target.url))
    tasks.create_task(parent=queue.name, task=http_task(name, target.url))

    target.received(1)


def test_fault_after_the_call_hides_a_success(
    gcloud: GoogleCloudEmulator, tasks: Any, queue: Any, target: RecordingTarget
) -> None:
    gcloud.faults.fail_next(
        "google.cloud.tasks.v2.CloudTasks/CreateTask", "DEADLINE_EXCEEDED", after=True
    )
    name = f"{queue.name}/tasks/t"

    with pytest.raises(exceptions.DeadlineExceeded):
        tasks.create_task(parent=queue.name, task=http_task(name, target.url))
    with pytest.raises(exceptions.AlreadyExists):
        tasks.create_task(parent=queue.name, task=http_task(name, target.url))
    target.received(1)


def test_faults_are_per_method(gcloud: GoogleCloudEmulator, jobs: Any, location: str) -> None:
    gcloud.faults.fail_next("google.cloud.scheduler.v1.CloudScheduler/CreateJob", "INTERNAL")

    operation = jobs.create_job(
        parent=location,
        job_id="unaffected",
        job={"template": {"template": {"containers": [{"command": ["true"]}]}}},
    )

    assert operation.result(timeout=5).name.endswith("/jobs/unaffected")
    assert len(gcloud.faults.pending()) == 1


def test_faults_over_http(
    gcloud: GoogleCloudEmulator, tasks: Any, queue: Any, target: RecordingTarget
) -> None:
    url = f"{gcloud.http_url}/emulator/v1/faults"
    with requests.post(
        url, json={"method": "CreateTask", "code": "ALREADY_EXISTS"}, timeout=5
    ) as response:
        assert response.status_code == 201
    with requests.get(url, timeout=5) as response:
        assert response.json()["faults"] == [
            {"method": "CreateTask", "code": "ALREADY_EXISTS", "times": 1, "after": False}
        ]

    with pytest.raises(exceptions.AlreadyExists):
        tasks.create_task(parent=queue.name, task=http_task(f"{queue.name}/tasks/a", target.url))

    with requests.post(url, json={"method": "GetQueue", "code": "NOPE"}, timeout=5) as response:
        assert response.status_code == 400
    with requests.delete(url, timeout=5) as response:
        assert response.json() == {"faults": []}
