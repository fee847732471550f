"""Cloud Scheduler: keep one HTTP job per scheduled task in step with it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from .clients import scheduler_client
from .errors import GoogleCloudError

#: Fields a sync may change on an existing job.
UPDATE_MASK = {"paths": ["description", "schedule", "time_zone", "http_target"]}


@dataclass(frozen=True, slots=True, kw_only=True)
class SchedulerTarget:
    project: str
    location: str
    url: str  #: the schedule/ endpoint
    service_account: str
    audience: str
    emulator_host: str | None = None

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.location}"

    def job_path(self, name: str) -> str:
        return f"{self.parent}/jobs/{name}"


def sync_job(
    target: SchedulerTarget,
    *,
    name: str,
    schedule: str,
    time_zone: str,
    description: str,
    body: dict[str, str],
    enabled: bool,
) -> str:
    """Create or update the job ``name``, then pause or resume it; return its resource name."""
    from google.api_core import exceptions
    from google.cloud import scheduler_v1

    client = scheduler_client(target.emulator_host)
    job: dict[str, Any] = {
        "name": target.job_path(name),
        "description": description,
        "schedule": schedule,
        "time_zone": time_zone,
        "http_target": {
            "uri": target.url,
            "http_method": scheduler_v1.HttpMethod.POST,
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            "body": urlencode(body).encode(),
            "oidc_token": {
                "service_account_email": target.service_account,
                "audience": target.audience,
            },
        },
    }
    try:
        try:
            current = client.get_job(name=job["name"])
        except exceptions.NotFound:
            current = client.create_job(parent=target.parent, job=job)
        else:
            current = client.update_job(job=job, update_mask=UPDATE_MASK)
        state = scheduler_v1.Job.State
        if enabled and current.state != state.ENABLED:
            client.resume_job(name=job["name"])
        elif not enabled and current.state != state.PAUSED:
            client.pause_job(name=job["name"])
    except exceptions.GoogleAPICallError as exc:
        raise GoogleCloudError(f"Cloud Scheduler sync of {job['name']} failed: {exc}") from exc
    return str(job["name"])


def delete_job(target: SchedulerTarget, job_name: str) -> bool:
    """Delete a job by resource name; False if it did not exist."""
    from google.api_core import exceptions

    try:
        scheduler_client(target.emulator_host).delete_job(name=job_name)
    except exceptions.NotFound:
        return False
    except exceptions.GoogleAPICallError as exc:
        raise GoogleCloudError(f"Cloud Scheduler delete_job {job_name} failed: {exc}") from exc
    return True
