"""CloudTasksBackend: each execution is delivered by Cloud Tasks to the ``execute/`` endpoint."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import ClassVar

from ..gcp import cloud_tasks
from ..gcp.resources import CloudResource
from ..store import TaskExecution
from .google_cloud import GoogleCloudBackend, dispatch_id

#: Cloud Tasks queue and task ids (what a delivery's headers may name).
_QUEUE_ID = re.compile(r"[A-Za-z0-9-]{1,100}")
_TASK_ID = re.compile(r"[A-Za-z0-9_-]{1,500}")


class CloudTasksBackend(GoogleCloudBackend):
    """Async HTTP work on Cloud Tasks, state in Firestore."""

    supports_defer = True
    supports_priority = False
    messaging_system = "gcp_cloud_tasks"
    supports_reschedule: ClassVar[bool] = True
    timeout_range: ClassVar[tuple[timedelta, timedelta]] = (
        timedelta(seconds=15),
        timedelta(minutes=30),
    )

    def _target(self) -> cloud_tasks.TaskTarget:
        return cloud_tasks.TaskTarget(
            project=self.cloud.project_id,
            location=self.cloud.location,
            url=self.execute_url,
            service_account=self.cloud.oidc_service_account,
            audience=self.audience,
            emulator_host=self.emulator,
        )

    def resource(self, name: str) -> CloudResource:
        return self._target().queue(name)

    def platform_max_attempts(self, queue: str) -> int | None:
        return cloud_tasks.queue_max_attempts(self._target(), queue)

    def dispatch_deadline(self, execution: TaskExecution, queue: str) -> timedelta | None:
        """The task's ``timeout``, else its queue's declared ``dispatch_deadline``, else
        None (Cloud Tasks' default, 10 minutes)."""
        if execution.timeout_seconds:
            return timedelta(seconds=execution.timeout_seconds)
        declared: timedelta | None = self.declarations.settings(queue).get("dispatch_deadline")
        return declared

    def send(self, execution: TaskExecution, *, resend: bool = False) -> dict[str, str]:
        schedule_time = execution.run_after if execution.run_after > execution.enqueued_at else None
        # A repeat is refused (ALREADY_EXISTS): the task id is the dispatch's.
        return self._create(execution, dispatch_id(execution), schedule_time)

    def reschedule(self, execution: TaskExecution) -> bool:
        """A new Cloud Task for the next attempt, due at ``run_after`` (the policy's backoff,
        not the queue's); named after the dispatch and the failed attempt, so a repeat
        of this (a redelivery of the failed attempt's answer) is refused as a duplicate."""
        task_id = f"{dispatch_id(execution)}-a{execution.attempts}"
        self._create(execution, task_id, execution.run_after)
        return True

    def _create(
        self, execution: TaskExecution, task_id: str, schedule_time: datetime | None
    ) -> dict[str, str]:
        queue = self.resolve_queue(execution.queue_name)
        name = cloud_tasks.create_http_task(
            self._target(),
            queue=queue,
            task_id=task_id,
            body={"execution_id": execution.id, "backend": self.alias},
            schedule_time=schedule_time,
            dispatch_deadline=self.dispatch_deadline(execution, queue),
            headers=dict(execution.trace_context),  # W3C traceparent / tracestate
        )
        return {"cloud_task_name": name}

    def delivery_names(self, carrier: Mapping[str, str]) -> dict[str, str]:
        """The delivered task's name, from the headers Cloud Tasks sets on the request."""
        queue = carrier.get("X-CloudTasks-QueueName", "")
        task = carrier.get("X-CloudTasks-TaskName", "")
        if not (_QUEUE_ID.fullmatch(queue) and _TASK_ID.fullmatch(task)):
            return {}
        return {"cloud_task_name": f"{self._target().queue_path(queue)}/tasks/{task}"}
