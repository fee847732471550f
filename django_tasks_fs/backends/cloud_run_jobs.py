"""CloudRunJobsBackend: each execution runs as a Cloud Run Job execution (``execute_task``)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import ClassVar

from ..gcp import cloud_run
from ..gcp.resources import CloudResource
from ..store import TaskExecution
from ..tracing import ENV_CARRIER
from .google_cloud import GoogleCloudBackend, dispatch_id

logger = logging.getLogger(__name__)


class CloudRunJobsBackend(GoogleCloudBackend):
    """Long or batch work on Cloud Run Jobs (the queue name is the job name)."""

    supports_defer = False
    supports_priority = False
    messaging_system = "gcp_cloud_run_jobs"
    supports_force_cancel: ClassVar[bool] = True
    timeout_range: ClassVar[tuple[timedelta, timedelta]] = (
        timedelta(seconds=1),
        timedelta(hours=168),
    )

    def _target(self) -> cloud_run.JobTarget:
        return cloud_run.JobTarget(
            project=self.cloud.project_id,
            location=self.cloud.location,
            emulator_host=self.emulator,
            command=tuple(self.config.command),
        )

    def resource(self, name: str) -> CloudResource:
        return self._target().job(name)

    def platform_max_attempts(self, queue: str) -> int | None:
        return cloud_run.job_max_attempts(self._target(), queue)

    def send(self, execution: TaskExecution, *, resend: bool = False) -> dict[str, str]:
        # RunJob has no request id: a resend first looks for the run of this dispatch.
        target, job, marker = (
            self._target(),
            self.resolve_queue(execution.queue_name),
            dispatch_id(execution),
        )
        if resend:
            found = cloud_run.find_execution(target, job=job, dispatch_id=marker)
            if found is not None:
                return {"cloud_run_execution": found}
        timeout = execution.timeout_seconds
        carrier = {
            ENV_CARRIER[k]: v for k, v in execution.trace_context.items() if k in ENV_CARRIER
        }
        name = cloud_run.run_job(
            target,
            job=job,
            args=[*self.config.command, execution.id],
            timeout=timedelta(seconds=timeout) if timeout else None,
            env={**carrier, cloud_run.DISPATCH_ENV: marker},
        )
        return {"cloud_run_execution": name}

    def force_stop(self, execution: TaskExecution) -> None:
        """Cancel the job execution: Cloud Run sends SIGTERM, the task sees TaskCancelledError."""
        if execution.cloud_run_execution:
            cloud_run.cancel_execution(self._target(), execution.cloud_run_execution)
        else:
            logger.warning("no Cloud Run execution recorded execution_id=%s", execution.id)
