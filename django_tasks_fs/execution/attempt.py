"""Run one attempt of one execution: win the lease, call the task, record the outcome.

Used by the local worker's processes, ``manage.py execute_task`` (Cloud Run Jobs) and the
``execute/`` endpoint (Cloud Tasks). Nothing is written unless the lease was won, and a
lease loser writes nothing at all.
"""

from __future__ import annotations

import enum
import logging
import traceback
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.tasks import TaskResultStatus
from django.tasks.signals import task_finished, task_started

from ..exceptions import (
    ClaimReason,
    ClaimRefused,
    ExecutionNotFound,
    LeaseLost,
    PayloadError,
    PermanentTaskError,
    TaskCancelledError,
    TaskTimeout,
)
from ..results import TaskNotImportable, load_task, to_task_result
from ..store import ErrorEntry, Lease, TaskExecution
from ..store.transitions import class_path
from ..tasks import TaskContext
from .heartbeat import Heartbeat
from .interrupts import Interrupts, interruptible

if TYPE_CHECKING:
    from ..backends.base import FirestoreBackend

logger = logging.getLogger(__name__)


class Outcome(enum.StrEnum):
    """How an attempt ended, as the platform needs to know it."""

    SUCCEEDED = "succeeded"  #: SUCCESSFUL recorded
    FAILED = "failed"  #: FAILED recorded: no further attempt
    RETRY = "retry"  #: failure recorded, READY again: another attempt should come
    RELEASED = "released"  #: handed back unfinished (shutdown): run it again later
    REFUSED = "refused"  #: the lease was not won; ``reason`` says why
    LEASE_LOST = "lease_lost"  #: another attempt took over; nothing written

    @property
    def wants_retry(self) -> bool:
        """Should the platform deliver this execution again?"""
        return self in {Outcome.RETRY, Outcome.RELEASED, Outcome.LEASE_LOST}


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptResult:
    outcome: Outcome
    execution: TaskExecution | None = None
    reason: ClaimReason | None = None

    @property
    def wants_retry(self) -> bool:
        if self.outcome == Outcome.REFUSED:
            # A live lease elsewhere or not due yet: deliver again later; the rest are final.
            return self.reason in {ClaimReason.LEASE_HELD, ClaimReason.NOT_DUE}
        return self.outcome.wants_retry


def _error_entry(exc: BaseException) -> ErrorEntry:
    return ErrorEntry(
        exception_class_path=class_path(type(exc)),
        traceback="".join(traceback.format_exception(exc)),
    )


def _synthetic_error(exc_type: type[BaseException], message: str) -> ErrorEntry:
    return ErrorEntry(
        exception_class_path=class_path(exc_type), traceback=f"{exc_type.__name__}: {message}\n"
    )


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
    ) -> None:
        self.backend = backend
        self.store = backend.executions
        self.execution_id = execution_id
        self.worker_id = worker_id
        self.known = known
        self.max_attempts = max_attempts

    def run(self) -> AttemptResult:
        """Claim, run and record; never raises for task errors."""
        config = self.backend.config
        try:
            lease = self.store.claim(
                self.execution_id,
                worker_id=self.worker_id,
                lease_duration=config.lease_duration,
                known=self.known,
                max_attempts=self.max_attempts,
            )
        except ExecutionNotFound:
            return AttemptResult(outcome=Outcome.REFUSED, reason=ClaimReason.NOT_FOUND)
        except ClaimRefused as refused:
            logger.info(
                "claim refused execution_id=%s reason=%s", self.execution_id, refused.reason
            )
            if (
                refused.execution is not None
                and refused.execution.is_finished
                and refused.reason
                in {
                    ClaimReason.RUN_ONCE_ATTEMPTED,
                    ClaimReason.ATTEMPTS_EXHAUSTED,
                    ClaimReason.CANCELLED,
                }
            ):
                self._send_finished(refused.execution)
            return AttemptResult(
                outcome=Outcome.REFUSED, execution=refused.execution, reason=refused.reason
            )
        if lease.execution.backend != self.backend.alias:
            # Claimed through the wrong backend: hand it straight back, untouched.
            self.store.release(lease)
            return AttemptResult(outcome=Outcome.REFUSED, reason=ClaimReason.NOT_FOUND)
        return self._run_leased(lease)

    def _run_leased(self, lease: Lease) -> AttemptResult:
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
            try:
                task = load_task(execution.task_path)
            except TaskNotImportable as exc:
                # A task whose module is gone can never run: fail it now, never leave it RUNNING.
                heartbeat.stop(config.heartbeat_join_timeout_seconds)
                return self._record(heartbeat.lease, error=_error_entry(exc), retryable=False)
            result = to_task_result(execution, task)
            task_started.send(type(self.backend), task_result=result)
            try:
                interrupts.armed = True
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
                latest = heartbeat.stop(config.heartbeat_join_timeout_seconds)
                return self._stopped(latest, heartbeat, interrupts, exc)
            except PermanentTaskError as exc:
                interrupts.armed = False
                latest = heartbeat.stop(config.heartbeat_join_timeout_seconds)
                return self._record(latest, error=_error_entry(exc), retryable=False)
            except Exception as exc:
                interrupts.armed = False
                latest = heartbeat.stop(config.heartbeat_join_timeout_seconds)
                if heartbeat.cancelled.is_set():
                    return self._stopped(latest, heartbeat, interrupts, exc)
                return self._record(latest, error=_error_entry(exc), retryable=True)
            latest = heartbeat.stop(config.heartbeat_join_timeout_seconds)
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
    ) -> AttemptResult:
        """The task was stopped: record a cancel or a timeout, or hand it back (shutdown)."""
        if heartbeat.lost.is_set():
            return AttemptResult(outcome=Outcome.LEASE_LOST)
        try:
            current = self.store.get(self.execution_id)
        except ExecutionNotFound:
            return AttemptResult(outcome=Outcome.LEASE_LOST)
        if current.lease_owner != lease.owner:
            return AttemptResult(outcome=Outcome.LEASE_LOST)
        if current.cancelled_at is not None:
            error = (
                _error_entry(exc)
                if isinstance(exc, TaskCancelledError)
                else _synthetic_error(
                    TaskCancelledError, f"cancelled while running ({type(exc).__name__})"
                )
            )
            return self._record(lease, error=error, retryable=False)
        if interrupts.timed_out:
            seconds = interrupts.timeout
            return self._record(
                lease,
                error=_synthetic_error(TaskTimeout, f"attempt exceeded its timeout of {seconds}s"),
                retryable=True,
            )
        try:
            released = self.store.release(lease)
        except LeaseLost:
            return AttemptResult(outcome=Outcome.LEASE_LOST)
        logger.info("attempt handed back execution_id=%s", self.execution_id)
        return AttemptResult(outcome=Outcome.RELEASED, execution=released)

    def _succeed(self, lease: Lease, value: Any) -> AttemptResult:
        try:
            done = self.store.succeed(lease, value)
        except LeaseLost:
            return AttemptResult(outcome=Outcome.LEASE_LOST)
        except PayloadError as exc:
            # The return value cannot be stored: the attempt fails, clearly, and for good.
            return self._record(lease, error=_error_entry(exc), retryable=False)
        self._send_finished(done)
        if done.status != TaskResultStatus.SUCCESSFUL:  # cancelled while it ran
            return AttemptResult(outcome=Outcome.FAILED, execution=done)
        return AttemptResult(outcome=Outcome.SUCCEEDED, execution=done)

    def _record(self, lease: Lease, *, error: ErrorEntry, retryable: bool) -> AttemptResult:
        retry_at = None
        if retryable:
            retry_at = self.store.clock.now() + self.backend.retry_delay(lease.attempt)
        try:
            after = self.store.fail(lease, error, retryable=retryable, retry_at=retry_at)
        except LeaseLost:
            return AttemptResult(outcome=Outcome.LEASE_LOST)
        if after.status == TaskResultStatus.READY:
            logger.info(
                "attempt failed, will retry execution_id=%s attempt=%s", after.id, after.attempts
            )
            return AttemptResult(outcome=Outcome.RETRY, execution=after)
        self._send_finished(after)
        return AttemptResult(outcome=Outcome.FAILED, execution=after)

    def _send_finished(self, execution: TaskExecution) -> None:
        try:
            result = to_task_result(execution)
        except TaskNotImportable:
            return  # nothing to describe it with; the failure itself is recorded
        task_finished.send(type(self.backend), task_result=result)


def default_retry_delay(attempt: int, *, base: float, maximum: float) -> timedelta:
    """Exponential backoff: base, 2*base, 4*base, ... capped at ``maximum`` seconds."""
    return timedelta(seconds=min(base * (2 ** max(attempt - 1, 0)), maximum))
