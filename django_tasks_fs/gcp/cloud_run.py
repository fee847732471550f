"""Cloud Run Jobs: run a job execution for an execution, read retry limits, cancel."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from .clients import executions_client, jobs_client
from .errors import GoogleCloudError
from .resources import CloudResource, Kind, bounded_retry, call_failed, field

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class JobTarget:
    """Where one backend's Cloud Run Jobs live."""

    project: str
    location: str
    emulator_host: str | None = None
    command: tuple[str, ...] = ()  #: the jobs' ``execute_task`` command (for messages)

    def job_path(self, job: str) -> str:
        return self.job(job).path

    def job(self, name: str) -> CloudResource:
        return CloudResource(
            kind=Kind.JOB,
            project=self.project,
            location=self.location,
            name=name,
            emulator_host=self.emulator_host,
            job_args=self.command,
        )


def run_job(
    target: JobTarget,
    *,
    job: str,
    args: list[str],
    timeout: timedelta | None,
    env: dict[str, str] | None = None,
    task_count: int = 1,
) -> str:
    """Start one execution of ``job`` with ``args`` overridden, running ``task_count``
    tasks (containers); return its resource name.

    MissingCloudResource if the job does not exist."""
    from google.api_core import exceptions
    from google.cloud import run_v2

    override: dict[str, object] = {"args": args}
    if env:
        override["env"] = [{"name": k, "value": v} for k, v in env.items()]
    overrides: dict[str, object] = {"container_overrides": [override], "task_count": task_count}
    if timeout is not None:
        overrides["timeout"] = timeout
    request = run_v2.RunJobRequest(name=target.job_path(job), overrides=overrides)
    try:
        operation = jobs_client(target.emulator_host).run_job(request=request)
        return str(operation.metadata.name)
    except exceptions.NotFound:
        raise target.job(job).missing() from None
    except exceptions.GoogleAPICallError as exc:
        raise GoogleCloudError(f"Cloud Run run_job {target.job_path(job)} failed: {exc}") from exc


#: Set on every job execution started for a dispatch; its value is the dispatch id.
DISPATCH_ENV = "DJANGO_TASKS_FS_DISPATCH"
#: Set on a fan-out's job execution instead: the dispatch ids of its members, comma
#: separated, in task order (task ``CLOUD_RUN_TASK_INDEX`` runs the member at that index).
FAN_OUT_ENV = "DJANGO_TASKS_FS_FAN_OUT"
#: How many of a job's executions a resend looks through (the newest first).
FIND_LIMIT = 200


def find_execution(
    target: JobTarget, *, job: str, dispatch_id: str, seen: dict[str, str] | None = None
) -> str | None:
    """The job execution started for ``dispatch_id`` (by its DISPATCH_ENV, or as a
    member of a fan-out by its FAN_OUT_ENV), if any.

    ``seen`` collects the members of every fan-out looked through (dispatch id -> job
    execution), so a caller resending many members of one fan-out lists it once."""
    from google.api_core import exceptions

    client = executions_client(target.emulator_host)
    try:
        listed = client.list_executions(request={"parent": target.job_path(job), "page_size": 50})
        for n, found in enumerate(listed):
            if n >= FIND_LIMIT:
                break
            for var in (e for c in found.template.containers for e in c.env):
                if var.name == DISPATCH_ENV and var.value == dispatch_id:
                    return str(found.name)
                if var.name == FAN_OUT_ENV:
                    members = var.value.split(",")
                    if seen is not None:
                        seen.update(dict.fromkeys(members, str(found.name)))
                    if dispatch_id in members:
                        return str(found.name)
    except exceptions.NotFound:
        raise target.job(job).missing() from None
    except exceptions.GoogleAPICallError as exc:
        raise GoogleCloudError(
            f"Cloud Run list_executions {target.job_path(job)} failed: {exc}"
        ) from exc
    return None


def job_max_attempts(target: JobTarget, job: str) -> int:
    """Total attempts of a job's task: ``max_retries + 1``; MissingCloudResource if none."""
    from google.api_core import exceptions

    try:
        found = jobs_client(target.emulator_host).get_job(name=target.job_path(job))
    except exceptions.NotFound:
        raise target.job(job).missing() from None
    except exceptions.GoogleAPICallError as exc:
        raise GoogleCloudError(f"Cloud Run get_job {target.job_path(job)} failed: {exc}") from exc
    return int(found.template.template.max_retries) + 1


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What the backend needs to know of a job execution."""

    task_count: int  #: tasks (containers) it runs: more than one for a fan-out
    finished: bool  #: completed, failed or cancelled: none of its tasks will start again


def execution_info(target: JobTarget, execution_name: str) -> RunInfo:
    """Read a job execution; GoogleCloudError if that fails (gone, no permission)."""
    from google.api_core import exceptions

    try:
        found = executions_client(target.emulator_host).get_execution(name=execution_name)
    except exceptions.GoogleAPICallError as exc:
        raise GoogleCloudError(f"Cloud Run get_execution {execution_name} failed: {exc}") from exc
    return RunInfo(task_count=int(found.task_count) or 1, finished="completion_time" in found)


def cancel_execution(target: JobTarget, execution_name: str) -> bool:
    """Cancel a running job execution (its container gets SIGTERM); False if already done."""
    from google.api_core import exceptions

    try:
        executions_client(target.emulator_host).cancel_execution(name=execution_name)
    except exceptions.FailedPrecondition:
        logger.warning("execution already finished or cancelling name=%s", execution_name)
        return False
    except exceptions.GoogleAPICallError as exc:
        raise GoogleCloudError(
            f"Cloud Run cancel_execution {execution_name} failed: {exc}"
        ) from exc
    return True


def write_job(job: CloudResource, settings: Mapping[str, Any], *, timeout: float) -> None:
    """Set ``settings`` (field path -> value) on the existing ``job``, the rest as it is.

    UpdateJob replaces the whole job, so the job is read and sent back changed; a job
    cannot be created here (its image belongs to the deployment): MissingCloudResource.
    """
    from google.api_core import exceptions

    client = jobs_client(job.emulator_host)
    try:
        found = client.get_job(name=job.path, timeout=timeout, retry=bounded_retry(timeout))
        for path, value in settings.items():
            parent, _, leaf = path.rpartition(".")
            setattr(field(found, parent) if parent else found, leaf, value)
        client.update_job(job=found, timeout=timeout, retry=bounded_retry(timeout)).result(
            timeout=timeout
        )
    except exceptions.NotFound:
        raise job.missing() from None
    except (exceptions.GoogleAPICallError, exceptions.RetryError) as exc:
        raise call_failed(job, "Cloud Run update_job", exc, timeout=timeout) from exc
