"""Cloud Tasks: create the HTTP task that delivers an execution, read queue retry limits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from .clients import tasks_client
from .drift import nested
from .errors import GoogleCloudError
from .resources import CloudResource, Kind, bounded_retry, call_failed


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskTarget:
    """Where and how Cloud Tasks delivers executions of one backend."""

    project: str
    location: str
    url: str  #: the execute/ endpoint
    service_account: str
    audience: str
    emulator_host: str | None = None

    def queue_path(self, queue: str) -> str:
        return self.queue(queue).path

    def queue(self, name: str) -> CloudResource:
        return CloudResource(
            kind=Kind.QUEUE,
            project=self.project,
            location=self.location,
            name=name,
            emulator_host=self.emulator_host,
        )


def create_http_task(
    target: TaskTarget,
    *,
    queue: str,
    task_id: str,
    body: dict[str, str],
    schedule_time: datetime | None,
    dispatch_deadline: timedelta | None,
    headers: dict[str, str] | None = None,
) -> str:
    """Create the task ``task_id`` (de-duplicated by name); return its resource name.

    ALREADY_EXISTS means an earlier dispatch of the same execution went through: it
    counts as success. NOT_FOUND (no such queue) raises MissingCloudResource.
    """
    from google.api_core import exceptions
    from google.cloud import tasks_v2

    name = f"{target.queue_path(queue)}/tasks/{task_id}"
    task: dict[str, Any] = {
        "name": name,
        "http_request": {
            "http_method": tasks_v2.HttpMethod.POST,
            "url": target.url,
            "headers": {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})},
            "body": urlencode(body).encode(),
            "oidc_token": {
                "service_account_email": target.service_account,
                "audience": target.audience,
            },
        },
    }
    if schedule_time is not None:
        task["schedule_time"] = schedule_time
    if dispatch_deadline is not None:
        task["dispatch_deadline"] = dispatch_deadline
    try:
        created = tasks_client(target.emulator_host).create_task(
            parent=target.queue_path(queue), task=task
        )
    except exceptions.AlreadyExists:
        return name
    except exceptions.NotFound:
        raise target.queue(queue).missing() from None
    except exceptions.GoogleAPICallError as exc:
        raise GoogleCloudError(
            f"Cloud Tasks create_task in {target.queue_path(queue)} failed: {exc}"
        ) from exc
    return str(created.name)


def queue_max_attempts(target: TaskTarget, queue: str) -> int | None:
    """Total attempts the queue allows (None: unlimited); MissingCloudResource if none."""
    from google.api_core import exceptions

    try:
        found = tasks_client(target.emulator_host).get_queue(name=target.queue_path(queue))
    except exceptions.NotFound:
        raise target.queue(queue).missing() from None
    except exceptions.GoogleAPICallError as exc:
        raise GoogleCloudError(
            f"Cloud Tasks get_queue {target.queue_path(queue)} failed: {exc}"
        ) from exc
    attempts = int(found.retry_config.max_attempts)
    return None if attempts < 0 else max(attempts, 1) if attempts else 100


def write_queue(
    queue: CloudResource, settings: Mapping[str, Any], *, create: bool, timeout: float
) -> None:
    """Create ``queue`` with ``settings`` (field path -> value), or update exactly those
    fields of the existing queue (the update mask names them: nothing else changes)."""
    from google.api_core import exceptions

    client = tasks_client(queue.emulator_host)
    message = {"name": queue.path, **nested(settings)}
    try:
        if create:
            client.create_queue(
                parent=queue.path.rsplit("/queues/", 1)[0],
                queue=message,
                timeout=timeout,
                retry=bounded_retry(timeout),
            )
        elif settings:
            client.update_queue(
                queue=message,
                update_mask={"paths": sorted(settings)},
                timeout=timeout,
                retry=bounded_retry(timeout),
            )
    except (exceptions.GoogleAPICallError, exceptions.RetryError) as exc:
        call = "Cloud Tasks create_queue" if create else "Cloud Tasks update_queue"
        raise call_failed(queue, call, exc, timeout=timeout) from exc
