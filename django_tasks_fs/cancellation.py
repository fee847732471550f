"""Cancel executions, and let running tasks find out they were cancelled."""

from __future__ import annotations

from typing import Any

from django.tasks import TaskResult

from .backends.base import FirestoreBackend
from .group_completion import member_finished
from .registry import backend_holding, get_backend
from .store import CancelOutcome
from .tasks import TaskContext


def cancel_task(
    task_result_or_id: TaskResult[Any, Any] | str, *, force: bool = False
) -> CancelOutcome:
    """Cancel an execution; return what happened.

    Not started yet: it is marked FAILED (TaskCancelledError) and never runs. Running:
    it is asked to stop (``is_task_cancelled`` turns true); with ``force=True`` on a
    backend that supports it, it is stopped at once (SIGTERM). Finished: nothing
    changes. Raises TaskResultDoesNotExist for an unknown id, UnknownBackend for a
    result of a backend that is not a django_tasks_fs one.
    """
    if isinstance(task_result_or_id, TaskResult):
        backend = get_backend(task_result_or_id.backend)
        execution_id = task_result_or_id.id
    else:
        execution_id = task_result_or_id
        backend = backend_holding(execution_id)
    return cancel(backend, execution_id, force=force)


def cancel(backend: FirestoreBackend, execution_id: str, *, force: bool = False) -> CancelOutcome:
    """Cancel an execution of ``backend`` (see cancel_task); the admin's cancel actions too."""
    if force and not backend.supports_force_cancel:
        raise NotImplementedError(
            f"Backend {backend.alias!r} does not support forceful cancellation; "
            f"use cancel_task(..., force=False) and check is_task_cancelled() in the task."
        )
    execution, outcome = backend.executions.cancel(execution_id, force=force)
    if force and outcome == CancelOutcome.REQUESTED:
        backend.force_stop(execution)
    if outcome == CancelOutcome.CANCELLED:
        member_finished(backend, execution)  # a group member that will never run
    return outcome


def is_task_cancelled(context: Any, *, refresh: bool = False) -> bool:
    """True once the execution was cancelled (or this attempt lost its lease).

    Heartbeats deliver a cancel request within one heartbeat interval; ``refresh=True``
    reads Firestore now instead.
    """
    if not isinstance(context, TaskContext):
        kind = type(context)
        raise TypeError(
            f"Expected django_tasks_fs.tasks.TaskContext, got {kind.__module__}.{kind.__qualname__}."
        )
    if context.cancelled.is_set():
        return True
    if refresh and context.check_cancelled is not None:
        return bool(context.check_cancelled())
    return False
