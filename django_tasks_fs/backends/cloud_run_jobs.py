"""CloudRunJobsBackend: each execution runs as a Cloud Run Job execution (``execute_task``)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, ClassVar

from django.tasks import TaskResultStatus

from ..gcp import cloud_run
from ..gcp.errors import GoogleCloudError, MissingCloudResource
from ..gcp.resources import CloudResource
from ..store import DispatchState, TaskExecution
from ..tracing import ENV_CARRIER
from . import fan_out
from .google_cloud import GoogleCloudBackend, dispatch_id

logger = logging.getLogger(__name__)

#: Cloud Run job and execution ids (what a job's environment may name).
_RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")
#: Fan-out members a resend has seen in job executions (dispatch id -> job execution),
#: remembered so the sweeper lists a fan-out's executions once, not once per member.
SEEN_LIMIT = 100_000


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

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self._seen: dict[str, str] = {}

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
        if self._waiting_in_fan_out(execution):
            return {"cloud_run_execution": str(execution.cloud_run_execution)}
        if resend:
            found = self._seen.get(marker)
            if found is None:
                if len(self._seen) > SEEN_LIMIT:
                    self._seen.clear()
                found = cloud_run.find_execution(
                    target, job=job, dispatch_id=marker, seen=self._seen
                )
            if found is not None:
                return {"cloud_run_execution": found}
        name = cloud_run.run_job(
            target,
            job=job,
            args=[*self.config.command, execution.id],
            timeout=_timeout(execution),
            env={**_carrier(execution), cloud_run.DISPATCH_ENV: marker},
        )
        return {"cloud_run_execution": name}

    def _waiting_in_fan_out(self, execution: TaskExecution) -> bool:
        """Is this re-dispatch of a READY execution a member still waiting for its task
        in a running fan-out (a low parallelism, long tasks)? Then it is not abandoned:
        its job execution is recorded again (the sweeper looks again after its stale
        period) rather than a second job execution started for it."""
        name = execution.cloud_run_execution
        if not (execution.redispatches and name and execution.status == TaskResultStatus.READY):
            return False
        try:
            run = cloud_run.execution_info(self._target(), name)
        except GoogleCloudError:
            return False  # gone or unreadable: send it again
        return run.task_count > 1 and not run.finished

    def dispatch_many(self, executions: Sequence[TaskExecution]) -> list[TaskExecution]:
        """Fan out: one job execution with ``task_count=N`` for N executions alike (see
        fan_out.py), split by ``fan_out_max_tasks``; a lone one is sent as dispatch()
        does. Like a send, a started fan-out writes nothing: each member's claim marks it
        DISPATCHED with the job execution's name; a failed start leaves every member
        PENDING with the error (the sweeper sends each again, finding the job execution
        if it did start).
        """
        runs = fan_out.plan(executions, max_tasks=self.config.fan_out_max_tasks)
        alone = [run[0] for run in runs if len(run) == 1]
        sent = {e.id: e for e in alone}
        missing: MissingCloudResource | None = None
        try:
            sent.update((e.id, e) for e in super().dispatch_many(alone))
        except MissingCloudResource as exc:  # closed FAILED; the fan-outs are tried still
            missing = exc
        for run in (run for run in runs if len(run) > 1):
            try:
                sent.update((e.id, e) for e in self._start_fan_out(run))
            except MissingCloudResource as exc:
                missing = missing or exc
        if missing is not None:
            raise missing
        return [sent[e.id] for e in executions]

    def _start_fan_out(self, members: list[TaskExecution]) -> list[TaskExecution]:
        """Start one job execution running ``members``, task i running member i."""
        first = members[0]
        try:
            cloud_run.run_job(
                self._target(),
                job=self.resolve_queue(first.queue_name),
                args=[*self.config.command, "--fan-out"],
                timeout=_timeout(first),
                env={**_carrier(first), **fan_out.member_env([e.id for e in members])},
                task_count=len(members),
            )
        except MissingCloudResource as exc:
            closed = [self._refuse(e, exc) for e in members]
            raise exc.recorded(first.id, closed=all(closed)) from None
        except Exception as exc:  # as dispatch(): never an orphan
            logger.warning(
                "fan-out of %d failed, the sweeper will retry execution_ids=%s",
                len(members),
                [e.id for e in members],
                exc_info=True,
            )
            error = f"{type(exc).__name__}: {exc}"[:2000]
            return [self._record_dispatch(e, DispatchState.PENDING, error=error) for e in members]
        return members

    def delivery_names(self, carrier: Mapping[str, str]) -> dict[str, str]:
        """The job execution running this process, from the variables Cloud Run sets
        (``CLOUD_RUN_JOB``, ``CLOUD_RUN_EXECUTION``): force-cancel stops that one."""
        job = carrier.get("CLOUD_RUN_JOB", "")
        run = carrier.get("CLOUD_RUN_EXECUTION", "")
        if not (_RUN_ID.fullmatch(job) and _RUN_ID.fullmatch(run)):
            return {}
        return {"cloud_run_execution": f"{self._target().job_path(job)}/executions/{run}"}

    def force_stop(self, execution: TaskExecution) -> None:
        """Cancel the job execution: Cloud Run sends SIGTERM, the task sees TaskCancelledError.

        Not a fan-out's (more than one task): that would stop every member. Its member
        stops at its next heartbeat instead, which sees the forceful cancel and raises
        TaskCancelledError in the task, as the SIGTERM would."""
        name = execution.cloud_run_execution
        if not name:
            logger.warning("no Cloud Run execution recorded execution_id=%s", execution.id)
            return
        target = self._target()
        try:
            shared = cloud_run.execution_info(target, name).task_count > 1
        except GoogleCloudError:
            logger.warning("could not read %s; not cancelling it", name, exc_info=True)
            return
        if shared:
            logger.info(
                "fan-out member: its heartbeat stops it, not a cancel of %s execution_id=%s",
                name,
                execution.id,
            )
            return
        cloud_run.cancel_execution(target, name)


def _timeout(execution: TaskExecution) -> timedelta | None:
    seconds = execution.timeout_seconds
    return timedelta(seconds=seconds) if seconds else None


def _carrier(execution: TaskExecution) -> dict[str, str]:
    """The execution's trace context as the job's environment carries it."""
    return {ENV_CARRIER[k]: v for k, v in execution.trace_context.items() if k in ENV_CARRIER}
