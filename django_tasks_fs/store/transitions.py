"""The execution state machine as pure functions: (execution, now) -> next execution.

No I/O here; store.executions applies these with compare-and-set. Keeping them pure
makes every rule (who may claim, when a failure retries, what cancel may touch)
testable without Firestore.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime, timedelta

from django.tasks import TaskResultStatus

from ..exceptions import TaskCancelledError, WorkerLost
from .client import StoreSettings
from .documents import DispatchState, ErrorEntry, TaskExecution
from .errors import ClaimReason, ClaimRefused, LeaseLost
from .history import append_error, append_worker

READY = TaskResultStatus.READY
RUNNING = TaskResultStatus.RUNNING
FAILED = TaskResultStatus.FAILED
SUCCESSFUL = TaskResultStatus.SUCCESSFUL


class CancelOutcome(enum.StrEnum):
    """What a cancel request did."""

    CANCELLED = "cancelled"  #: it was not running: now FAILED, will never run
    REQUESTED = "requested"  #: it is running: the attempt is asked to stop
    ALREADY_FINISHED = "already_finished"  #: nothing changed


def class_path(exc_type: type[BaseException]) -> str:
    return f"{exc_type.__module__}.{exc_type.__qualname__}"


def _with_error(
    execution: TaskExecution, settings: StoreSettings, entry: ErrorEntry
) -> list[ErrorEntry]:
    return append_error(
        execution.errors,
        entry,
        max_entries=settings.max_history_entries,
        max_bytes=settings.max_history_bytes,
    )


def _expiry(settings: StoreSettings, status: TaskResultStatus, now: datetime) -> datetime | None:
    keep = settings.retention_successful if status == SUCCESSFUL else settings.retention_failed
    return None if keep is None else now + keep


def _closed(
    execution: TaskExecution,
    settings: StoreSettings,
    status: TaskResultStatus,
    now: datetime,
    **changes: object,
) -> TaskExecution:
    """Finish an execution: no lease, a finish time and an expiry for TTL retention."""
    return execution.evolve(
        status=status,
        finished_at=now,
        lease_owner=None,
        lease_expires_at=None,
        expires_at=_expiry(settings, status, now),
        **changes,
    )


def lease_expired(execution: TaskExecution, now: datetime) -> bool:
    return execution.lease_expires_at is None or execution.lease_expires_at <= now


def needs_redispatch(
    execution: TaskExecution, now: datetime, *, grace: timedelta, stale: timedelta
) -> bool:
    """Has the platform (probably) given up on a dispatched execution that isn't finished?

    RUNNING with a lease expired for ``grace``: its worker died, and the platform's own
    retries may all have met the live lease. Each abandoned attempt is re-dispatched
    once, and again only after ``stale``. READY and dispatched for ``stale``: its
    deliveries ran out (a retry budget smaller than the outage, a job's retries spent
    on a live lease). A spare delivery is harmless: the lease admits one owner.
    """
    if execution.is_finished or execution.dispatch_state != DispatchState.DISPATCHED:
        return False
    last_dispatch = execution.dispatched_at or execution.enqueued_at
    long_ago = last_dispatch + stale <= now
    if execution.status == RUNNING:
        if lease_expired(execution, now - grace):
            return execution.redispatched_attempt != execution.attempts or long_ago
        return False
    return execution.run_after + stale <= now and long_ago


def redispatch(execution: TaskExecution) -> TaskExecution:
    """Mark an abandoned execution for one more dispatch (the sweeper then sends it)."""
    return execution.evolve(
        dispatch_state=DispatchState.PENDING,
        redispatches=execution.redispatches + 1,
        redispatched_attempt=execution.attempts,
    )


def claim(
    execution: TaskExecution,
    settings: StoreSettings,
    *,
    owner: str,
    worker_id: str,
    now: datetime,
    lease_duration: timedelta,
    backend: str | None = None,
    platform_names: Mapping[str, str] | None = None,
) -> TaskExecution:
    """Start a new attempt, or raise ClaimRefused carrying the state to write (if any).

    ``backend``, when given, must own the execution (another backend's execution is
    refused as not found, and left untouched). ``platform_names`` (``cloud_task_name``,
    ``cloud_run_execution``) name the delivery that runs the attempt: recorded with it,
    so a dispatch costs no write of its own (and a force-cancel stops the run that holds
    the lease).

    A refusal that ends the execution (run_once, attempts exhausted, cancelled) carries
    the FAILED execution in ``ClaimRefused.execution`` so the caller can persist it:
    nothing is left RUNNING or READY forever.
    """
    if backend is not None and execution.backend != backend:
        raise ClaimRefused(ClaimReason.NOT_FOUND, None)
    if execution.is_finished:
        raise ClaimRefused(ClaimReason.FINISHED, execution)
    if execution.status == RUNNING and not lease_expired(execution, now):
        raise ClaimRefused(ClaimReason.LEASE_HELD, execution)
    if execution.status == READY and execution.run_after > now:
        raise ClaimRefused(ClaimReason.NOT_DUE, execution)

    if execution.status == RUNNING:  # expired lease: the previous attempt's worker is gone
        lost = ErrorEntry(
            exception_class_path=class_path(WorkerLost),
            traceback=(
                f"Attempt {execution.attempts} by {execution.lease_owner} lost its lease at "
                f"{execution.lease_expires_at} without recording a result.\n"
            ),
        )
        execution = execution.evolve(errors=_with_error(execution, settings, lost))

    if execution.cancelled_at is not None:
        closed = _closed(execution, settings, FAILED, now)
        raise ClaimRefused(ClaimReason.CANCELLED, closed)
    if execution.run_once and execution.attempts >= 1:
        raise ClaimRefused(
            ClaimReason.RUN_ONCE_ATTEMPTED, _closed(execution, settings, FAILED, now)
        )
    if execution.max_attempts is not None and execution.attempts >= execution.max_attempts:
        raise ClaimRefused(
            ClaimReason.ATTEMPTS_EXHAUSTED, _closed(execution, settings, FAILED, now)
        )

    return execution.evolve(
        status=RUNNING,
        attempts=execution.attempts + 1,
        started_at=execution.started_at or now,
        last_attempted_at=now,
        worker_ids=append_worker(
            execution.worker_ids, worker_id, max_entries=settings.max_history_entries
        ),
        lease_owner=owner,
        lease_expires_at=now + lease_duration,
        heartbeat_at=now,
        # A delivery proves the dispatch went through: enqueue() does not write after a
        # successful send, the first delivery's claim records it (see dispatching.py).
        dispatch_state=DispatchState.DISPATCHED
        if execution.dispatch_state == DispatchState.PENDING
        else execution.dispatch_state,
        dispatch_error=None
        if execution.dispatch_state == DispatchState.PENDING
        else execution.dispatch_error,
        **(platform_names or {}),
    )


def refuse_dispatch(
    execution: TaskExecution, settings: StoreSettings, *, now: datetime, error: ErrorEntry
) -> TaskExecution:
    """The platform cannot take the execution (its queue or job does not exist): FAILED
    with ``error``, never sent again. Finished executions, and a running attempt of an
    earlier dispatch, are left alone (the sweeper tries again once its lease expired)."""
    if execution.is_finished or (execution.status == RUNNING and not lease_expired(execution, now)):
        return execution
    return _closed(
        execution,
        settings,
        FAILED,
        now,
        errors=_with_error(execution, settings, error),
        dispatch_state=DispatchState.REFUSED,
        dispatch_error=error.traceback.strip()[:2000],
    )


def check_owner(execution: TaskExecution, owner: str) -> None:
    """Raise LeaseLost unless ``owner`` holds the live attempt of ``execution``."""
    if execution.status != RUNNING or execution.lease_owner != owner:
        raise LeaseLost(
            f"Execution {execution.id!r} is {execution.status} with lease owner "
            f"{execution.lease_owner!r}, not {owner!r}."
        )


def renew(
    execution: TaskExecution, *, owner: str, now: datetime, lease_duration: timedelta
) -> TaskExecution:
    """Extend the lease of the attempt ``owner`` (heartbeat)."""
    check_owner(execution, owner)
    return execution.evolve(lease_expires_at=now + lease_duration, heartbeat_at=now)


def succeed(
    execution: TaskExecution,
    settings: StoreSettings,
    *,
    owner: str,
    now: datetime,
    return_value: object,
) -> TaskExecution:
    """Record the attempt's return value; a cancel requested meanwhile wins (FAILED)."""
    check_owner(execution, owner)
    if execution.cancelled_at is not None:
        entry = ErrorEntry(
            exception_class_path=class_path(TaskCancelledError),
            traceback="Cancelled while running; the attempt's return value was discarded.\n",
        )
        return _closed(
            execution, settings, FAILED, now, errors=_with_error(execution, settings, entry)
        )
    return _closed(execution, settings, SUCCESSFUL, now, return_value=return_value)


def fail(
    execution: TaskExecution,
    settings: StoreSettings,
    *,
    owner: str,
    now: datetime,
    error: ErrorEntry,
    retryable: bool,
    retry_at: datetime | None = None,
) -> TaskExecution:
    """Record a failed attempt: READY again when another attempt is allowed, else FAILED."""
    check_owner(execution, owner)
    errors = _with_error(execution, settings, error)
    may_retry = (
        retryable
        and execution.cancelled_at is None
        and not execution.run_once
        and (execution.max_attempts is None or execution.attempts < execution.max_attempts)
    )
    if not may_retry:
        return _closed(execution, settings, FAILED, now, errors=errors)
    return execution.evolve(
        status=READY,
        errors=errors,
        run_after=retry_at or now,
        lease_owner=None,
        lease_expires_at=None,
    )


def release(execution: TaskExecution, *, owner: str) -> TaskExecution:
    """Hand an unfinished attempt back (worker shutdown): READY, and the attempt not counted."""
    check_owner(execution, owner)
    worker_ids = execution.worker_ids[:-1] if execution.worker_ids else []
    return execution.evolve(
        status=READY,
        attempts=max(execution.attempts - 1, 0),
        worker_ids=worker_ids,
        lease_owner=None,
        lease_expires_at=None,
    )


def cancel(
    execution: TaskExecution, settings: StoreSettings, *, now: datetime, force: bool
) -> tuple[TaskExecution, CancelOutcome]:
    """Cancel: a finished execution is never touched; a running one is asked to stop."""
    if execution.is_finished:
        return execution, CancelOutcome.ALREADY_FINISHED
    if execution.status == RUNNING and not lease_expired(execution, now):
        requested = execution.evolve(
            cancelled_at=execution.cancelled_at or now,
            force_cancel=execution.force_cancel or force,
        )
        return requested, CancelOutcome.REQUESTED
    entry = ErrorEntry(
        exception_class_path=class_path(TaskCancelledError),
        traceback="Cancelled before it ran.\n",
    )
    closed = _closed(
        execution,
        settings,
        FAILED,
        now,
        cancelled_at=now,
        force_cancel=force,
        errors=_with_error(execution, settings, entry),
    )
    return closed, CancelOutcome.CANCELLED
