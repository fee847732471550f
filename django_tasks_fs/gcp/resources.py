"""The Google Cloud resources a backend needs before its first enqueue: Cloud Tasks
queues and Cloud Run jobs. Their names, the command that creates each, and whether it
exists."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .clients import jobs_client, tasks_client
from .errors import GoogleCloudError, MissingCloudResource


class Kind(enum.StrEnum):
    QUEUE = "Cloud Tasks queue"
    JOB = "Cloud Run job"


@dataclass(frozen=True, slots=True, kw_only=True)
class CloudResource:
    """One queue or job, where it must be."""

    kind: Kind
    project: str
    location: str
    name: str
    emulator_host: str | None = None
    job_args: tuple[str, ...] = ()  #: a job's command (``execute_task``), for its create command

    @property
    def path(self) -> str:
        plural = "queues" if self.kind == Kind.QUEUE else "jobs"
        return f"projects/{self.project}/locations/{self.location}/{plural}/{self.name}"

    @property
    def create_command(self) -> str:
        if self.kind == Kind.QUEUE:
            return (
                f"gcloud tasks queues create {self.name} --location={self.location} "
                f"--project={self.project}"
            )
        args = f" --args={','.join(self.job_args)}" if self.job_args else ""
        return (
            f"gcloud run jobs create {self.name} --image=IMAGE --region={self.location} "
            f"--project={self.project}{args}"
        )

    @property
    def fix(self) -> str:
        """How to create it: the gcloud command (and a word about the emulator)."""
        fix = f"Create it with: {self.create_command}"
        if self.emulator_host:
            client = (
                "CloudTasksClient.create_queue"
                if self.kind == Kind.QUEUE
                else "JobsClient.create_job"
            )
            fix += (
                f" (this backend uses the local Google Cloud emulator at "
                f"{self.emulator_host!r}, which gcloud cannot reach: 'manage.py "
                f"tasks_emulators' creates the queues and jobs TASKS names when it starts; "
                f"or create it there with the official Python client's {client}())"
            )
        return fix + "."

    def missing(self) -> MissingCloudResource:
        """The error saying this resource does not exist, and how to create it."""
        where = "location" if self.kind == Kind.QUEUE else "region"
        return MissingCloudResource(
            f"The {self.kind} {self.name!r} does not exist in project {self.project!r}, "
            f"{where} {self.location!r} ({self.path}). {self.fix}",
            resource=self.path,
            command=self.create_command,
        )


def exists(resource: CloudResource, *, timeout: float) -> bool:
    """Does ``resource`` exist? GoogleCloudError if the answer cannot be had within
    ``timeout`` seconds (unreachable, no permission to look, ...)."""
    from google.api_core import exceptions

    try:
        if resource.kind == Kind.QUEUE:
            tasks_client(resource.emulator_host).get_queue(name=resource.path, timeout=timeout)
        else:
            jobs_client(resource.emulator_host).get_job(name=resource.path, timeout=timeout)
    except exceptions.NotFound:
        return False
    except (exceptions.GoogleAPICallError, exceptions.RetryError) as exc:
        raise GoogleCloudError(
            f"Could not look up the {resource.kind} {resource.path}: {exc}"
        ) from exc
    return True


def read_fields(
    resource: CloudResource, paths: Iterable[str], *, timeout: float
) -> dict[str, Any] | None:
    """The live values of ``paths`` (Google field paths) of ``resource``; None if it
    does not exist. GoogleCloudError naming it and what to do otherwise."""
    from google.api_core import exceptions

    if resource.kind == Kind.QUEUE:
        get, call = tasks_client(resource.emulator_host).get_queue, "Cloud Tasks get_queue"
    else:
        get, call = jobs_client(resource.emulator_host).get_job, "Cloud Run get_job"
    try:
        found = get(name=resource.path, timeout=timeout, retry=bounded_retry(timeout))
    except exceptions.NotFound:
        return None
    except (exceptions.GoogleAPICallError, exceptions.RetryError) as exc:
        raise call_failed(resource, call, exc, timeout=timeout) from exc
    return {path: field(found, path) for path in paths}


def bounded_retry(timeout: float) -> Any:
    """Retry UNAVAILABLE for at most ``timeout`` seconds in all: an unreachable API
    fails within that, not after the clients' default minute."""
    from google.api_core import exceptions
    from google.api_core import retry as retries

    return retries.Retry(
        predicate=retries.if_exception_type(exceptions.ServiceUnavailable),
        initial=0.2,
        maximum=1.0,
        timeout=timeout,
    )


def call_failed(
    resource: CloudResource, call: str, exc: Exception, *, timeout: float
) -> GoogleCloudError:
    """The error for a failed ``call`` on ``resource``: what failed and what to do."""
    from google.api_core import exceptions

    if isinstance(exc, exceptions.PermissionDenied):
        needs = (
            "cloudtasks.queues.get, .create and .update (roles/cloudtasks.queueAdmin)"
            if resource.kind == Kind.QUEUE
            else "run.jobs.get and run.jobs.update (roles/run.developer), and "
            "iam.serviceAccounts.actAs on the job's service account"
        )
        hint = f"The caller needs {needs}: see the deployment guide's IAM section."
    elif isinstance(
        exc, (exceptions.RetryError, exceptions.ServiceUnavailable, exceptions.DeadlineExceeded)
    ):
        where = (
            f"The Google Cloud emulator at {resource.emulator_host!r}"
            if resource.emulator_host
            else "The Google Cloud API"
        )
        hint = (
            f"{where} did not answer within {timeout:g} s: check that it is running and "
            "reachable (network, DJANGO_TASKS_FS_EMULATOR_HOST / emulator_host), or raise --timeout."
        )
    else:
        hint = "Check the declared settings and the credentials."
    return GoogleCloudError(f"{call} of the {resource.kind} {resource.path} failed: {exc}. {hint}")


def field(message: Any, path: str) -> Any:
    """The value at ``path`` (``"a.b"``) of a proto-plus message."""
    for part in path.split("."):
        message = getattr(message, part)
    return message
