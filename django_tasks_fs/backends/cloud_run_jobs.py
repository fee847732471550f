"""CloudRunJobsBackend: each execution runs as a Cloud Run Job execution (``execute_task``)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import ClassVar

from ..gcp import cloud_run
from ..gcp.resources import CloudResource
from ..store import TaskExecution
from ..tracing import ENV_CARRIER
from .google_cloud import GoogleCloudBackend, dispatch_id

logger = logging.getLogger(__name__)

#: Cloud Run job and execution ids (what a job's environment may name).
_RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")


class CloudRunJobsBackend(GoogleCloudBackend):
    """Long or batch work on Cloud Run Jobs (the queue name is the job name)."""

    supports_defer = False
    supports_priority = False
    messaging_system = "gcp_cloud_run_jobs"
    supports_force_cancel: ClassVar[bool] = True
    declares_jobs: ClassVar[bool] = True
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

    def delivery_names(self, carrier: Mapping[str, str]) -> dict[str, str]:
        """The job execution running this process, from the variables Cloud Run sets
        (``CLOUD_RUN_JOB``, ``CLOUD_RUN_EXECUTION``): force-cancel stops that one."""
        job = carrier.get("CLOUD_RUN_JOB", "")
        run = carrier.get("CLOUD_RUN_EXECUTION", "")
        if not (_RUN_ID.fullmatch(job) and _RUN_ID.fullmatch(run)):
            return {}
        return {"cloud_run_execution": f"{self._target().job_path(job)}/executions/{run}"}

    def force_stop(self, execution: TaskExecution) -> None:
        """Cancel the job execution: Cloud Run sends SIGTERM, the task sees TaskCancelledError."""
        if execution.cloud_run_execution:
            cloud_run.cancel_execution(self._target(), execution.cloud_run_execution)
        else:
            logger.warning("no Cloud Run execution recorded execution_id=%s", execution.id)
