"""The Cloud Run v2 gRPC services ``google.cloud.run.v2.Jobs`` and ``.Executions``."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import grpc
from google.cloud import run_v2
from google.longrunning import operations_pb2

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
from .run_state import RunBook, fill_job_defaults

JOBS_SERVICE = "google.cloud.run.v2.Jobs"
EXECUTIONS_SERVICE = "google.cloud.run.v2.Executions"
PARENT = re.compile(r"projects/([^/]+)/locations/([^/]+)")
JOB = re.compile(r"(projects/[^/]+/locations/[^/]+)/jobs/([^/]+)")
EXECUTION = re.compile(r"(projects/[^/]+/locations/[^/]+/jobs/[^/]+)/executions/([^/]+)")
#: Job fields a client sets; the rest are output only.
SETTABLE_JOB_FIELDS = (
    "labels",
    "annotations",
    "client",
    "client_version",
    "launch_stage",
    "binary_authorization",
    "template",
)
Operation = operations_pb2.Operation


class CloudRunService:
    """Handlers for the Jobs and Executions RPCs, over a :class:`RunBook`."""

    def __init__(self, book: RunBook) -> None:
        self.book = book

    def handlers(self, faults: FaultInjector) -> list[grpc.GenericRpcHandler]:
        r = run_v2
        jobs = [
            Method("CreateJob", self.create_job, r.CreateJobRequest, Operation),
            Method("GetJob", self.get_job, r.GetJobRequest, r.Job),
            Method("ListJobs", self.list_jobs, r.ListJobsRequest, r.ListJobsResponse),
            Method("UpdateJob", self.update_job, r.UpdateJobRequest, Operation),
            Method("DeleteJob", self.delete_job, r.DeleteJobRequest, Operation),
            Method("RunJob", self.run_job, r.RunJobRequest, Operation),
        ]
        executions = [
            Method("GetExecution", self.get_execution, r.GetExecutionRequest, r.Execution),
            Method(
                "ListExecutions",
                self.list_executions,
                r.ListExecutionsRequest,
                r.ListExecutionsResponse,
            ),
            Method("CancelExecution", self.cancel_execution, r.CancelExecutionRequest, Operation),
            Method("DeleteExecution", self.delete_execution, r.DeleteExecutionRequest, Operation),
        ]
        return [
            service_handler(JOBS_SERVICE, jobs, faults),
            service_handler(EXECUTIONS_SERVICE, executions, faults),
        ]

    # Jobs --------------------------------------------------------------------

    def create_job(self, request: Any) -> Any:
        match_name(request.parent, PARENT, "location")
        if not request.job_id:
            invalid("job_id is required.")
        check_id(request.job_id, "job")
        job = clone(request.job)
        name = f"{request.parent}/jobs/{request.job_id}"
        if job.name and job.name != name:
            invalid(f"Job name {job.name!r} does not match {name!r}.")
        fill_job_defaults(job)
        now = datetime.now(UTC)
        job.name = name
        job.uid = str(uuid.uuid4())
        job.generation = 1
        job.observed_generation = 1
        job.create_time = now
        job.update_time = now
        job.terminal_condition = run_v2.Condition(
            type_="Ready",
            state=run_v2.Condition.State.CONDITION_SUCCEEDED,
            last_transition_time=now,
        )
        job.etag = uuid.uuid4().hex
        with self.book.lock:
            if name in self.book.jobs:
                raise RpcError(grpc.StatusCode.ALREADY_EXISTS, f"Resource '{name}' already exists.")
            if not request.validate_only:
                self.book.jobs[name] = job
            snapshot = clone(job)
        return self.book.operations.create(request.parent, snapshot, response=snapshot)

    def get_job(self, request: Any) -> Any:
        with self.book.lock:
            return clone(self._job(request.name))

    def list_jobs(self, request: Any) -> Any:
        match_name(request.parent, PARENT, "location")
        prefix = request.parent + "/jobs/"
        with self.book.lock:
            jobs = [clone(j) for n, j in sorted(self.book.jobs.items()) if n.startswith(prefix)]
        page, token = paginate(jobs, request.page_size, request.page_token)
        return run_v2.ListJobsResponse(jobs=page, next_page_token=token)

    def update_job(self, request: Any) -> Any:
        """Replace the settable fields; create the job if missing and ``allow_missing``."""
        update = clone(request.job)
        parent, job_id = match_name(update.name, JOB, "job").groups()
        fill_job_defaults(update)
        with self.book.lock:
            current = self.book.jobs.get(update.name)
        if current is None:
            if not request.allow_missing:
                not_found(f"job {update.name}")
            create = run_v2.CreateJobRequest(
                parent=parent, job_id=job_id, job=update, validate_only=request.validate_only
            )
            return self.create_job(create)
        with self.book.lock:
            job = clone(self._job(update.name))
            for field in SETTABLE_JOB_FIELDS:
                setattr(job, field, getattr(update, field))
            job.generation += 1
            job.observed_generation = job.generation
            job.update_time = datetime.now(UTC)
            job.etag = uuid.uuid4().hex
            if not request.validate_only:
                # Keep execution bookkeeping made since the copy was taken.
                stored = self.book.jobs[update.name]
                job.execution_count = stored.execution_count
                job.latest_created_execution = stored.latest_created_execution
                self.book.jobs[update.name] = job
            snapshot = clone(job)
        return self.book.operations.create(parent, snapshot, response=snapshot)

    def delete_job(self, request: Any) -> Any:
        """Delete a job and its executions (running ones are cancelled)."""
        with self.book.lock:
            job = clone(self._job(request.name))
            executions = [n for n in self.book.executions if n.startswith(request.name + "/")]
        for name in executions:
            self.book.forget(name)
        with self.book.lock:
            self.book.jobs.pop(request.name, None)
        job.delete_time = datetime.now(UTC)
        return self.book.operations.create(request.name.split("/jobs/")[0], job, response=job)

    def run_job(self, request: Any) -> Any:
        """Start an execution; the operation is done when the execution ends.

        Its metadata is the Execution as it progresses.
        """
        match_name(request.name, JOB, "job")
        return self.book.start(request.name, request.overrides)

    def _job(self, name: str) -> Any:
        match_name(name, JOB, "job")
        job = self.book.jobs.get(name)
        if job is None:
            not_found(f"job {name}")
        return job

    # Executions ----------------------------------------------------------------

    def get_execution(self, request: Any) -> Any:
        with self.book.lock:
            return clone(self._execution(request.name).execution)

    def list_executions(self, request: Any) -> Any:
        """List a job's executions, newest first (``jobs/-``: every job's)."""
        parent = request.parent
        if not parent.endswith("/jobs/-"):
            with self.book.lock:
                self._job(parent)
        prefix = parent.removesuffix("-")
        with self.book.lock:
            found = [
                clone(e.execution)
                for n, e in self.book.executions.items()
                if n.startswith(prefix) and (parent.endswith("-") or n.startswith(parent + "/"))
            ]
        found.sort(key=lambda e: e.create_time, reverse=True)
        page, token = paginate(found, request.page_size, request.page_token)
        return run_v2.ListExecutionsResponse(executions=page, next_page_token=token)

    def cancel_execution(self, request: Any) -> Any:
        """Cancel a running execution; FAILED_PRECONDITION if it has finished."""
        match_name(request.name, EXECUTION, "execution")
        return self.book.cancel(request.name)

    def delete_execution(self, request: Any) -> Any:
        match_name(request.name, EXECUTION, "execution")
        execution = self.book.forget(request.name)
        return self.book.operations.create(
            request.name.split("/jobs/")[0], execution, response=execution
        )

    def _execution(self, name: str) -> Any:
        match_name(name, EXECUTION, "execution")
        entry = self.book.executions.get(name)
        if entry is None:
            not_found(f"execution {name}")
        return entry
