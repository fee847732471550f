"""Cancel executions, and let running tasks find out they were cancelled."""

from __future__ import annotations

from typing import Any

from django.tasks import TaskResult, task_backends

from .backends.base import FirestoreBackend
from .exceptions import ExecutionNotFound
from .store import CancelOutcome
from .tasks import TaskContext


def firestore_backends() -> list[FirestoreBackend]:
    """Every configured backend of this library."""
    return [b for b in task_backends.all() if isinstance(b, FirestoreBackend)]


def find_backend(execution_id: str) -> FirestoreBackend:
    """The backend whose store holds ``execution_id``; raise ExecutionNotFound."""
    for backend in firestore_backends():
        try:
            execution = backend.executions.get(execution_id)
        except ExecutionNotFound:
            continue
        return task_backends[execution.backend]  # type: ignore[return-value]
    raise ExecutionNotFound(f"No task execution with id {execution_id!r} in any backend.")


def cancel_task(
    task_result_or_id: TaskResult[Any, Any] | str, *, force: bool = False
) -> CancelOutcome:
    """Cancel an execution; return what happened.

    Not started yet: it is marked FAILED (TaskCancelledError) and never runs. Running:
    it is asked to stop (``is_task_cancelled`` turns true); with ``force=True`` on a
    backend that supports it, it is stopped at once (SIGTERM). Finished: nothing
    changes. Raises TaskResultDoesNotExist for an unknown id.
    """
    backend: FirestoreBackend
    if isinstance(task_result_or_id, TaskResult):
        found = task_backends[task_result_or_id.backend]
        execution_id = task_result_or_id.id
        if not isinstance(found, FirestoreBackend):
            raise TypeError(f"Backend {found.alias!r} is not a django_tasks_fs backend.")
        backend = found
    else:
        execution_id = task_result_or_id
        backend = find_backend(execution_id)
    if force and not backend.supports_force_cancel:
        raise NotImplementedError(
            f"Backend {backend.alias!r} does not support forceful cancellation; "
            f"use cancel_task(..., force=False) and check is_task_cancelled() in the task."
        )
    execution, outcome = backend.executions.cancel(execution_id, force=force)
    if force and outcome == CancelOutcome.REQUESTED:
        backend.force_stop(execution)
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
