"""Cloud Run state: jobs, their executions, and the operations that track them."""

from __future__ import annotations

import logging
import secrets
import string
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import grpc
from google.cloud import run_v2

from .operations import OperationBook
from .rpc import RpcError, clone, invalid, not_found
from .run_executor import ExecutionHandle, LaunchSpec, ProcessExecutor, Progress

logger = logging.getLogger(__name__)

DEFAULT_MAX_RETRIES = 3
#: Cloud Run's limits: tasks in one execution; bytes in one environment variable's value.
MAX_TASK_COUNT = 10_000
MAX_ENV_VALUE_BYTES = 32_768
DEFAULT_TASK_TIMEOUT = timedelta(minutes=10)
STOP_GRACE = 0.5  #: seconds between SIGTERM and SIGKILL when the emulator stops
Condition = run_v2.Condition


@dataclass(slots=True)
class ExecutionEntry:
    """A stored execution, its RunJob operation and the handle of its processes."""

    execution: Any  #: run_v2.Execution
    operation: str
    handle: ExecutionHandle | None = None
    waiting: list[str] = field(default_factory=list)  #: operations done when it ends


class RunBook:
    """Jobs and executions under one lock; executions report progress back here."""

    def __init__(
        self, *, operations: OperationBook, executor: ProcessExecutor, log_dir: Path
    ) -> None:
        self.lock = threading.Lock()
        self.jobs: dict[str, Any] = {}  #: name -> run_v2.Job
        self.executions: dict[str, ExecutionEntry] = {}
        self.operations = operations
        self.executor = executor
        self.log_dir = log_dir

    def start(self, job_name: str, overrides: Any) -> Any:
        """Create an execution of a job (with RunJob ``overrides``), start it, return its operation."""
        with self.lock:
            stored = self.jobs.get(job_name)
            if stored is None:
                not_found(f"job {job_name}")
            job = clone(stored)
        template = clone(job.template.template)
        _apply_overrides(template, overrides)
        task_count = overrides.task_count or job.template.task_count or 1
        job_id = job.name.rsplit("/", 1)[-1]
        suffix = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(5))
        execution_id = f"{job_id}-{suffix}"
        name = f"{job.name}/executions/{execution_id}"
        log_path = self.log_dir / f"{execution_id}.log"
        now = datetime.now(UTC)
        execution = run_v2.Execution(
            name=name,
            uid=str(uuid.uuid4()),
            job=job_id,
            generation=1,
            create_time=now,
            start_time=now,
            update_time=now,
            launch_stage=job.launch_stage,
            parallelism=job.template.parallelism,
            task_count=task_count,
            template=template,
            reconciling=True,
            observed_generation=1,
            log_uri=log_path.as_uri(),
            labels=dict(job.template.labels),
            conditions=[_condition(Condition.State.CONDITION_RECONCILING, "Execution is running.")],
            etag=uuid.uuid4().hex,
        )
        container = template.containers[0]
        spec = LaunchSpec(
            job_id=job_id,
            execution_id=execution_id,
            argv=(*(container.command or self.executor.entrypoint), *container.args),
            env={e.name: e.value for e in container.env if "value_source" not in e},
            task_count=task_count,
            parallelism=job.template.parallelism,
            max_retries=template.max_retries,
            timeout=template.timeout.total_seconds(),
            log_path=log_path,
        )
        location = job.name.split("/jobs/")[0]
        operation = self.operations.create(location, execution)
        with self.lock:
            entry = ExecutionEntry(execution=execution, operation=operation.name)
            self.executions[name] = entry
            job = self.jobs.get(job_name, job)
            job.execution_count += 1
            job.latest_created_execution = run_v2.ExecutionReference(
                name=name,
                create_time=now,
                completion_status=run_v2.ExecutionReference.CompletionStatus.EXECUTION_RUNNING,
            )
            entry.handle = self.executor.launch(spec, partial(self.report, name))
        logger.info("execution started execution=%s argv=%s", name, list(spec.argv))
        return operation

    def report(self, name: str, progress: Progress) -> None:
        """Copy an execution's counts into its resource; finish it when it has ended."""
        with self.lock:
            entry = self.executions.get(name)
            if entry is None:
                return  # deleted
            execution = entry.execution
            execution.running_count = progress.running
            execution.succeeded_count = progress.succeeded
            execution.failed_count = progress.failed
            execution.cancelled_count = progress.cancelled
            execution.retried_count = progress.retried
            execution.update_time = datetime.now(UTC)
            if progress.finished:
                self._finish(entry, progress)
            snapshot = clone(execution)
        done = snapshot if progress.finished else None
        self.operations.update(entry.operation, metadata=snapshot, response=done)
        if done is not None:
            for waiting in entry.waiting:
                self.operations.update(waiting, metadata=snapshot, response=snapshot)

    def _finish(self, entry: ExecutionEntry, progress: Progress) -> None:
        execution = entry.execution
        now = datetime.now(UTC)
        execution.completion_time = now
        execution.reconciling = False
        status = run_v2.ExecutionReference.CompletionStatus
        completion: Any
        if entry.handle is not None and entry.handle.cancelled.is_set():
            condition = _condition(
                Condition.State.CONDITION_FAILED,
                "The execution was cancelled.",
                reason=Condition.ExecutionReason.CANCELLED,
            )
            completion = status.EXECUTION_CANCELLED
        elif progress.failed:
            condition = _condition(
                Condition.State.CONDITION_FAILED,
                f"Task failed: {progress.failed} of {execution.task_count} tasks failed.",
                reason=Condition.ExecutionReason.NON_ZERO_EXIT_CODE,
            )
            completion = status.EXECUTION_FAILED
        else:
            condition = _condition(
                Condition.State.CONDITION_SUCCEEDED, "Execution completed successfully."
            )
            completion = status.EXECUTION_SUCCEEDED
        execution.conditions = [condition]
        job = self.jobs.get(execution.name.split("/executions/")[0])
        if job is not None and job.latest_created_execution.name == execution.name:
            job.latest_created_execution.completion_time = now
            job.latest_created_execution.completion_status = completion
        logger.info("execution ended execution=%s status=%s", execution.name, completion.name)

    def cancel(self, name: str) -> Any:
        """Cancel a running execution and return the operation that ends with it.

        Raises FAILED_PRECONDITION if it has already finished.
        """
        with self.lock:
            entry = self.executions.get(name)
            if entry is None:
                not_found(f"execution {name}")
            if "completion_time" in entry.execution:
                raise RpcError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"Execution {name} has already finished; it cannot be cancelled.",
                )
            location = name.split("/jobs/")[0]
            operation = self.operations.create(location, clone(entry.execution))
            entry.waiting.append(operation.name)
            if entry.handle is not None:
                entry.handle.cancel()
        return operation

    def forget(self, name: str) -> Any:
        """Delete an execution (cancelling it if running); return its last state."""
        with self.lock:
            entry = self.executions.pop(name, None)
            if entry is None:
                not_found(f"execution {name}")
            if entry.handle is not None:
                entry.handle.cancel()
            execution = clone(entry.execution)
        execution.delete_time = datetime.now(UTC)
        for operation in (entry.operation, *entry.waiting):
            self.operations.update(operation, metadata=execution, response=execution)
        return execution

    def stop(self) -> None:
        """Kill every running execution quickly."""
        self.executor.kill_grace = STOP_GRACE
        with self.lock:
            handles = [e.handle for e in self.executions.values() if e.handle is not None]
        for handle in handles:
            handle.cancel()
        for handle in handles:
            handle.join(timeout=STOP_GRACE + 2)


def fill_job_defaults(job: Any) -> None:
    """Validate a job's template and give unset fields Google's defaults, in place."""
    execution_template = job.template
    task_template = execution_template.template
    if not task_template.containers:
        invalid("Job template.template.containers must name one container.")
    if execution_template.task_count <= 0:
        execution_template.task_count = 1
    if "max_retries" not in task_template:
        task_template.max_retries = DEFAULT_MAX_RETRIES
    if "timeout" not in task_template:
        task_template.timeout = DEFAULT_TASK_TIMEOUT
    if not job.launch_stage:
        job.launch_stage = "GA"


def _apply_overrides(template: Any, overrides: Any) -> None:
    """Apply RunJob overrides to an execution's task template, in place."""
    if "timeout" in overrides:
        template.timeout = overrides.timeout
    if not 0 <= overrides.task_count <= MAX_TASK_COUNT:
        invalid(f"overrides.task_count must be from 0 to {MAX_TASK_COUNT}.")
    # Work on the protobufs: proto-plus wrappers of repeated message fields refuse
    # assignment and mix wrapped and raw elements.
    containers = run_v2.TaskTemplate.pb(template).containers
    for override in run_v2.RunJobRequest.Overrides.pb(overrides).container_overrides:
        if override.name:
            matching = [c for c in containers if c.name == override.name]
        else:
            matching = list(containers[:1])
        if not matching:
            invalid(f"Container override names unknown container {override.name!r}.")
        container = matching[0]
        if override.args or override.clear_args:
            del container.args[:]
            container.args.extend(override.args)
        if override.env:
            for var in override.env:
                if len(var.value.encode()) > MAX_ENV_VALUE_BYTES:
                    invalid(f"Env var {var.name!r} is over {MAX_ENV_VALUE_BYTES} bytes.")
            env = {var.name: var for var in container.env}
            env.update({var.name: var for var in override.env})
            merged = [type(var)() for var in env.values()]
            for copy, var in zip(merged, env.values(), strict=True):
                copy.CopyFrom(var)
            del container.env[:]
            container.env.extend(merged)


def _condition(state: Any, message: str, *, reason: Any = None) -> Any:
    condition = Condition(
        type_="Completed",
        state=state,
        message=message,
        last_transition_time=datetime.now(UTC),
    )
    if reason is not None:
        condition.execution_reason = reason
    return condition
