"""The Cloud Scheduler v1 gRPC service (``google.cloud.scheduler.v1.CloudScheduler``)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from google.cloud import scheduler_v1
from google.protobuf import empty_pb2

from . import cron
from .faults import FaultInjector
from .rpc import (
    Method,
    RpcError,
    check_id,
    clone,
    invalid,
    match_name,
    not_found,
    paginate,
    service_handler,
)
from .scheduler_runner import JobBook, JobEntry, SchedulerClock

SERVICE = "google.cloud.scheduler.v1.CloudScheduler"
PARENT = re.compile(r"projects/([^/]+)/locations/([^/]+)")
JOB = re.compile(r"(projects/[^/]+/locations/[^/]+)/jobs/([^/]+)")
#: Google's defaults and limits for HTTP jobs.
DEFAULT_ATTEMPT_DEADLINE = timedelta(minutes=3)
MIN_ATTEMPT_DEADLINE = timedelta(seconds=15)
MAX_ATTEMPT_DEADLINE = timedelta(minutes=30)
DEFAULT_MIN_BACKOFF = timedelta(seconds=5)
DEFAULT_MAX_BACKOFF = timedelta(hours=1)
DEFAULT_MAX_DOUBLINGS = 5
MAX_RETRY_COUNT = 5
UPDATABLE_FIELDS = (
    "description",
    "schedule",
    "time_zone",
    "http_target",
    "retry_config",
    "attempt_deadline",
)


class CloudSchedulerService:
    """Handlers for the CloudScheduler RPCs, over a :class:`JobBook`."""

    def __init__(self, book: JobBook, runner: SchedulerClock) -> None:
        self.book = book
        self.runner = runner

    def handler(self, faults: FaultInjector) -> grpc.GenericRpcHandler:
        s = scheduler_v1
        return service_handler(
            SERVICE,
            [
                Method("CreateJob", self.create_job, s.CreateJobRequest, s.Job),
                Method("GetJob", self.get_job, s.GetJobRequest, s.Job),
                Method("ListJobs", self.list_jobs, s.ListJobsRequest, s.ListJobsResponse),
                Method("UpdateJob", self.update_job, s.UpdateJobRequest, s.Job),
                Method("DeleteJob", self.delete_job, s.DeleteJobRequest, empty_pb2.Empty),
                Method("PauseJob", self.pause_job, s.PauseJobRequest, s.Job),
                Method("ResumeJob", self.resume_job, s.ResumeJobRequest, s.Job),
                Method("RunJob", self.run_job, s.RunJobRequest, s.Job),
            ],
            faults,
        )

    def create_job(self, request: Any) -> Any:
        """Store an HTTP job, enabled, with its first slot planned."""
        match_name(request.parent, PARENT, "location")
        job = clone(request.job)
        if not job.name:
            job.name = f"{request.parent}/jobs/job-{uuid.uuid4().hex[:12]}"
        parent, job_id = match_name(job.name, JOB, "job").groups()
        check_id(job_id, "job")
        if parent != request.parent:
            invalid(f"Job name {job.name!r} is not in parent {request.parent!r}.")
        self._normalize(job)
        job.state = scheduler_v1.Job.State.ENABLED
        job.user_update_time = datetime.now(UTC)
        with self.book.lock:
            if job.name in self.book.jobs:
                raise RpcError(grpc.StatusCode.ALREADY_EXISTS, f"Job {job.name} already exists.")
            entry = JobEntry(job=job, next_slot=None)
            self.book.plan(entry, datetime.now(UTC))
            self.book.jobs[job.name] = entry
            return clone(job)

    def get_job(self, request: Any) -> Any:
        with self.book.lock:
            return clone(self._entry(request.name).job)

    def list_jobs(self, request: Any) -> Any:
        match_name(request.parent, PARENT, "location")
        prefix = request.parent + "/jobs/"
        with self.book.lock:
            jobs = [clone(e.job) for n, e in sorted(self.book.jobs.items()) if n.startswith(prefix)]
        page, token = paginate(jobs, request.page_size, request.page_token)
        return scheduler_v1.ListJobsResponse(jobs=page, next_page_token=token)

    def update_job(self, request: Any) -> Any:
        """Update the masked fields (every settable one without a mask) and re-plan."""
        update = request.job
        paths = list(request.update_mask.paths) or list(UPDATABLE_FIELDS)
        for path in paths:
            if path.split(".", 1)[0] not in UPDATABLE_FIELDS:
                invalid(f"Field {path!r} of a job cannot be updated.")
        with self.book.lock:
            entry = self._entry(update.name)
            job = clone(entry.job)
            mask = type(request.update_mask)(paths=paths)
            mask.MergeMessage(
                scheduler_v1.Job.pb(update),
                scheduler_v1.Job.pb(job),
                replace_message_field=True,
                replace_repeated_field=True,
            )
            self._normalize(job)
            job.user_update_time = datetime.now(UTC)
            entry.job = job
            self.book.plan(entry, datetime.now(UTC))
            return clone(job)

    def delete_job(self, request: Any) -> Any:
        with self.book.lock:
            self._entry(request.name)
            del self.book.jobs[request.name]
        return empty_pb2.Empty()

    def pause_job(self, request: Any) -> Any:
        return self._set_state(request.name, scheduler_v1.Job.State.PAUSED)

    def resume_job(self, request: Any) -> Any:
        return self._set_state(request.name, scheduler_v1.Job.State.ENABLED)

    def run_job(self, request: Any) -> Any:
        """Fire the job now, whatever its state or schedule."""
        with self.book.lock:
            job = clone(self._entry(request.name).job)
        self.runner.fire(job, datetime.now(UTC))
        return job

    def _set_state(self, name: str, state: Any) -> Any:
        """Pause an enabled job or resume a paused one; FAILED_PRECONDITION otherwise."""
        with self.book.lock:
            entry = self._entry(name)
            wanted_from: Any = (
                scheduler_v1.Job.State.ENABLED
                if state == scheduler_v1.Job.State.PAUSED
                else scheduler_v1.Job.State.PAUSED
            )
            if entry.job.state != wanted_from:
                raise RpcError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"Job {name} is {entry.job.state.name}, not {wanted_from.name}.",
                )
            entry.job.state = state
            self.book.plan(entry, datetime.now(UTC))
            return clone(entry.job)

    def _entry(self, name: str) -> JobEntry:
        match_name(name, JOB, "job")
        entry = self.book.jobs.get(name)
        if entry is None:
            not_found(f"job {name}")
        return entry

    def _normalize(self, job: Any) -> None:
        """Validate a job and fill Google's defaults, in place."""
        if "pubsub_target" in job or "app_engine_http_target" in job:
            invalid("Only http_target jobs are supported by the emulator.")
        target = job.http_target
        if "http_target" not in job or not target.uri.startswith(("http://", "https://")):
            invalid(f"Job http_target.uri must be an http(s) URL, not {target.uri!r}.")
        if not target.http_method:
            target.http_method = scheduler_v1.HttpMethod.POST
        if "oidc_token" in target and not target.oidc_token.service_account_email:
            invalid("oidc_token.service_account_email is required.")
        try:
            cron.validate(job.schedule, job.time_zone, seconds=self.book.seconds_cron)
        except cron.InvalidSchedule as exc:
            invalid(str(exc))
        if "attempt_deadline" not in job:
            job.attempt_deadline = DEFAULT_ATTEMPT_DEADLINE
        elif not MIN_ATTEMPT_DEADLINE <= job.attempt_deadline <= MAX_ATTEMPT_DEADLINE:
            invalid("Job attempt_deadline must be between 15 seconds and 30 minutes.")
        retry = job.retry_config
        if not 0 <= retry.retry_count <= MAX_RETRY_COUNT:
            invalid(f"retry_count must be between 0 and 5, not {retry.retry_count!r}.")
        if "min_backoff_duration" not in retry:
            retry.min_backoff_duration = DEFAULT_MIN_BACKOFF
        if "max_backoff_duration" not in retry:
            retry.max_backoff_duration = DEFAULT_MAX_BACKOFF
        if retry.max_doublings == 0:
            retry.max_doublings = DEFAULT_MAX_DOUBLINGS
        if "max_retry_duration" not in retry:
            retry.max_retry_duration = timedelta(0)
