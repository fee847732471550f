"""Run one attempt of one execution: win the lease, call the task, record the outcome.

Used by the local worker's processes, ``manage.py execute_task`` (Cloud Run Jobs) and the
``execute/`` endpoint (Cloud Tasks). Nothing is written unless the lease was won, and a
lease loser writes nothing at all. What an attempt reports (Outcome, AttemptResult,
Failure) is in outcome.py; Outcome and AttemptResult are importable from here too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.tasks import TaskResultStatus
from django.tasks.signals import task_finished, task_started

from ..exceptions import (
    ExecutionNotFound,
    PayloadError,
    PermanentTaskError,
    TaskCancelledError,
    TaskNotImportable,
    TaskTimeout,
)
from ..group_completion import member_finished
from ..logging import log_context, task_extra
from ..policy import recorded_delay, retries_on
from ..results import load_task, to_task_result
from ..store import Lease, TaskExecution, transitions
from ..store.errors import ClaimReason, ClaimRefused, LeaseLost
from ..tasks import TaskContext
from ..tracing import consumer_span, record_outcome
from .heartbeat import Heartbeat
from .interrupts import Interrupts, interruptible
from .outcome import (
    CLOSING_REASONS,
    AttemptResult,
    Failure,
    Outcome,
    error_type,
    failure_of,
    synthetic_failure,
)
from .recorders import ImmediateRecorder, Recorder

if TYPE_CHECKING:
    from ..backends.base import FirestoreBackend

logger = logging.getLogger(__name__)

__all__ = ["Attempt", "AttemptResult", "Outcome"]


class Attempt:
    """One attempt at one execution on one backend (see module docstring)."""

    def __init__(
        self,
        backend: FirestoreBackend,
        execution_id: str,
        *,
        worker_id: str,
        known: TaskExecution | None = None,
        max_attempts: int | None = None,
        recorder: Recorder | None = None,
        trace_carrier: Mapping[str, str] | None = None,
        platform_names: Mapping[str, str] | None = None,
    ) -> None:
        self.backend = backend
        self.store = backend.executions
        self.execution_id = execution_id
        self.worker_id = worker_id
        self.known = known
        self.max_attempts = max_attempts
        self.recorder: Recorder = recorder or ImmediateRecorder(self.store)
        self.trace_carrier = trace_carrier  #: W3C context from the delivery (headers, env)
        #: The delivery's resource names, recorded by the claim (FirestoreBackend.delivery_names)
        self.platform_names = platform_names
        #: Seconds the task ran (its call only), once it did.
        self.duration: float | None = None

    def run(self) -> AttemptResult:
        """Claim, run and record; never raises for task errors."""
        with log_context(**self._attributes()):
            claimed = self._claim()
        if isinstance(claimed, AttemptResult):
            return claimed
        result = self.execute(claimed)
        assert result is not None, "an immediate recorder always returns a result"
        return result

    def _attributes(self, execution: TaskExecution | None = None, **more: Any) -> dict[str, Any]:
        """The log attributes of this attempt (see django_tasks_fs.logging)."""
        if execution is None:
            more.setdefault("execution_id", self.execution_id)
        return task_extra(execution, backend=self.backend.alias, worker_id=self.worker_id, **more)

    def log_attributes(self, result: AttemptResult) -> dict[str, Any]:
        """The log attributes of a finished attempt (for the caller's own record of it)."""
        return self._attributes(
            result.execution,
            outcome=str(result.outcome),
            duration=result.duration,
            error_class=error_type(result),
        )

    @contextmanager
    def _timed(self) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.duration = time.monotonic() - started

    def fail_unstarted(self, error: BaseException) -> AttemptResult:
        """Claim and record FAILED (no further attempt): the process meant to run the
        attempt could not start, so the task never ran."""
        claimed = self._claim()
        if isinstance(claimed, AttemptResult):
            return claimed
        result = self._fail(claimed, failure_of(error), retryable=False)
        assert result is not None, "an immediate recorder always returns a result"
        return result

    def _claim(self) -> Lease | AttemptResult:
        """Win the lease, or the result of the refusal."""
        config = self.backend.config
        try:
            return self.store.claim(
                self.execution_id,
                worker_id=self.worker_id,
                lease_duration=config.lease_duration,
                known=self.known,
                max_attempts=self.max_attempts,
                backend=self.backend.alias,
                platform_names=self.platform_names,
            )
        except ExecutionNotFound:
            return AttemptResult(outcome=Outcome.REFUSED, reason=ClaimReason.NOT_FOUND)
        except ClaimRefused as refused:
            logger.info(
                "claim refused execution_id=%s reason=%s",
                self.execution_id,
                refused.reason,
                extra=self._attributes(refused.execution, outcome=str(Outcome.REFUSED)),
            )
            if refused.reason in CLOSING_REASONS and refused.execution is not None:
                self._send_finished(refused.execution)
            if refused.execution is not None:
                # Finished already: its first worker may have died before checking its group.
                member_finished(self.backend, refused.execution)
            return AttemptResult(
                outcome=Outcome.REFUSED, execution=refused.execution, reason=refused.reason
            )

    def execute(self, lease: Lease) -> AttemptResult | None:
        """Run the task of an already won lease; None when the recorder defers the write."""
        execution = lease.execution
        carrier = self.trace_carrier or execution.trace_context or {}
        with (
            log_context(**self._attributes(execution), traceparent=carrier.get("traceparent")),
            consumer_span(self.backend, execution, self.trace_carrier) as span,
        ):
            result = self._execute(lease)
            if result is None:
                record_outcome(span, "recorded later")
            else:
                record_outcome(span, str(result.outcome), error_type(result))
            return result

    def _execute(self, lease: Lease) -> AttemptResult | None:
        config = self.backend.config
        execution = lease.execution
        with interruptible(execution.timeout_seconds) as interrupts:
            heartbeat = Heartbeat(
                self.store,
                lease,
                interval=config.heartbeat_interval_seconds,
                duration=config.lease_duration,
                on_stop_needed=interrupts.interrupt,
            )
            if config.heartbeat_enabled:
                heartbeat.start()
            join = config.heartbeat_join_timeout_seconds
            try:
                task = load_task(execution.task_path)
            except TaskNotImportable as exc:
                # A task whose module is gone can never run: fail it now, never leave it RUNNING.
                return self._fail(heartbeat.stop(join), failure_of(exc), retryable=False)
            result = to_task_result(execution, task)
            task_started.send(type(self.backend), task_result=result)
            try:
                interrupts.armed = True
                with self._timed():
                    if execution.takes_context:
                        context = TaskContext(
                            task_result=result,
                            cancelled=heartbeat.cancelled,
                            check_cancelled=lambda: self._check_cancelled(heartbeat),
                        )
                        value = task.call(context, *execution.args, **execution.kwargs)
                    else:
                        value = task.call(*execution.args, **execution.kwargs)
                interrupts.armed = False
            except (TaskCancelledError, KeyboardInterrupt, SystemExit) as exc:
                interrupts.armed = False
                return self._stopped(heartbeat.stop(join), heartbeat, interrupts, exc)
            except PermanentTaskError as exc:
                interrupts.armed = False
                return self._fail(heartbeat.stop(join), failure_of(exc), retryable=False)
            except Exception as exc:
                interrupts.armed = False
                latest = heartbeat.stop(join)
                if heartbeat.cancelled.is_set():
                    return self._stopped(latest, heartbeat, interrupts, exc)
                return self._fail(latest, failure_of(exc), retryable=True, exc=exc, task=task)
            latest = heartbeat.stop(join)
            if heartbeat.lost.is_set():
                return AttemptResult(outcome=Outcome.LEASE_LOST)
            return self._succeed(latest, value)

    def _check_cancelled(self, heartbeat: Heartbeat) -> bool:
        """Re-read the execution: cancelled, or no longer ours?"""
        try:
            current = self.store.get(self.execution_id)
        except ExecutionNotFound:
            current = None
        if (
            current is None
            or current.cancelled_at is not None
            or current.lease_owner != heartbeat.lease.owner
        ):
            heartbeat.cancelled.set()
        return heartbeat.cancelled.is_set()

    def _stopped(
        self, lease: Lease, heartbeat: Heartbeat, interrupts: Interrupts, exc: BaseException
    ) -> AttemptResult | None:
        """The task was stopped: record a cancel or a timeout, or hand it back (shutdown)."""
        if heartbeat.lost.is_set():
            return AttemptResult(outcome=Outcome.LEASE_LOST)
        try:
            current = self.store.get(self.execution_id)
        except ExecutionNotFound:
            return AttemptResult(outcome=Outcome.LEASE_LOST)
        if current.lease_owner != lease.owner:
            return AttemptResult(outcome=Outcome.LEASE_LOST)
        lease = Lease(owner=lease.owner, execution=current)
        if current.cancelled_at is not None:
            error = (
                failure_of(exc)
                if isinstance(exc, TaskCancelledError)
                else synthetic_failure(
                    TaskCancelledError, f"cancelled while running ({type(exc).__name__})"
                )
            )
            return self._fail(lease, error, retryable=False)
        if interrupts.timed_out:
            message = f"attempt exceeded its timeout of {interrupts.timeout}s"
            error = synthetic_failure(TaskTimeout, message)
            return self._fail(lease, error, retryable=True, exc=TaskTimeout(message))
        logger.info(
            "attempt handed back execution_id=%s",
            self.execution_id,
            extra=self._attributes(current, outcome=str(Outcome.RELEASED)),
        )
        return self.recorder.write(
            lease,
            lambda current, now: transitions.release(current, owner=lease.owner),
            lambda written: self._describe(written, Outcome.RELEASED),
        )

    def _succeed(self, lease: Lease, value: Any) -> AttemptResult | None:
        settings = self.store.settings

        def step(current: TaskExecution, now: datetime) -> TaskExecution:
            return transitions.succeed(
                current, settings, owner=lease.owner, now=now, return_value=value
            )

        try:
            # Refuse a return value that is not JSON or too large before deferring anything.
            self.store.check_writable(step(lease.execution, self.store.clock.now()))
        except PayloadError as exc:
            return self._fail(lease, failure_of(exc), retryable=False)
        except LeaseLost:
            return AttemptResult(outcome=Outcome.LEASE_LOST)
        return self.recorder.write(lease, step, self._finished)

    def _fail(
        self,
        lease: Lease,
        error: Failure,
        *,
        retryable: bool,
        exc: BaseException | None = None,
        task: Any = None,
    ) -> AttemptResult | None:
        retry_at = None
        if retryable:
            delay = self._retry_delay(lease, error, exc, task)
            retryable = delay is not None
            retry_at = None if delay is None else self.store.clock.now() + delay
        settings = self.store.settings

        def step(current: TaskExecution, now: datetime) -> TaskExecution:
            return transitions.fail(
                current,
                settings,
                owner=lease.owner,
                now=now,
                error=error.entry,
                retryable=retryable,
                retry_at=retry_at,
            )

        return self.recorder.write(lease, step, lambda written: self._finished(written, error))

    def _retry_delay(
        self, lease: Lease, error: Failure, exc: BaseException | None, task: Any
    ) -> timedelta | None:
        """The wait before the next attempt under the execution's recorded policy; None
        when its ``retry_on`` / ``dont_retry_on`` or its backoff callable refuse one."""
        execution = lease.execution
        policy = execution.retry_policy
        if not policy:  # recorded before per-task policies: the backend's backoff
            return self.backend.retry_delay(lease.attempt)
        exc = exc if exc is not None else Exception(error.summary)
        if not retries_on(policy, type(exc)):
            return None
        if task is None:  # a timeout: the attempt's task, for its own backoff function
            try:
                task = load_task(execution.task_path)
            except TaskNotImportable:
                task = None

        def failed_result() -> Any:
            failed = execution.evolve(
                status=TaskResultStatus.FAILED, errors=[*execution.errors, error.entry]
            )
            return to_task_result(failed, task)

        try:
            return recorded_delay(
                policy,
                lease.attempt,
                exc=exc,
                task_result=failed_result,
                own=getattr(task, "backoff", None),
            )
        except Exception:
            # A broken backoff must not lose the task: retry after the backend's backoff.
            logger.exception("backoff failed execution_id=%s", execution.id)
            return self.backend.options_backoff().delay(lease.attempt)

    def _finished(
        self, written: TaskExecution | LeaseLost, failure: Failure | None = None
    ) -> AttemptResult:
        """The result of a final write (success or failure); a failure is logged with its
        exception here, in whichever process ran the attempt."""
        if isinstance(written, LeaseLost):
            return AttemptResult(outcome=Outcome.LEASE_LOST)
        error = failure.summary if failure is not None else ""
        error_class = failure.entry.exception_class_path if failure is not None else None
        if written.status == TaskResultStatus.READY:
            logger.warning(
                "attempt failed, will retry execution_id=%s attempt=%s error=%s",
                written.id,
                written.attempts,
                error,
                extra=self._attributes(
                    written, outcome=str(Outcome.RETRY), duration=self.duration,
                    error_class=error_class,
                ),
            )  # fmt: skip
            return AttemptResult(
                outcome=Outcome.RETRY, execution=written, error=error, duration=self.duration
            )
        outcome = (
            Outcome.SUCCEEDED if written.status == TaskResultStatus.SUCCESSFUL else Outcome.FAILED
        )
        if written.status == TaskResultStatus.FAILED and failure is not None:
            logger.error(
                "attempt failed, no retry left execution_id=%s attempt=%s error=%s",
                written.id,
                written.attempts,
                error,
                extra=self._attributes(
                    written, outcome=str(outcome), duration=self.duration, error_class=error_class
                ),
            )
        self._send_finished(written)
        member_finished(self.backend, written)
        return AttemptResult(
            outcome=outcome, execution=written, error=error, duration=self.duration
        )

    def _describe(self, written: TaskExecution | LeaseLost, outcome: Outcome) -> AttemptResult:
        if isinstance(written, LeaseLost):
            return AttemptResult(outcome=Outcome.LEASE_LOST)
        return AttemptResult(outcome=outcome, execution=written)

    def _send_finished(self, execution: TaskExecution) -> None:
        try:
            result = to_task_result(execution)
        except TaskNotImportable:
            return  # nothing to describe it with; the failure itself is recorded
        task_finished.send(type(self.backend), task_result=result)
