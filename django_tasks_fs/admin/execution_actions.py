"""What the executions admin can do to an execution: cancel, force cancel, retry, delete.

Each Action says when it must be refused (a refusal message, also shown on the
confirmation page) and how it runs; the views in executions.py only check the
permission, ask for confirmation and report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.tasks import TaskResultStatus
from django.utils.html import format_html

from ..backends.base import FirestoreBackend
from ..cancellation import cancel
from ..exceptions import TaskNotImportable
from ..results import load_task
from ..store import CancelOutcome, TaskExecution


@dataclass(frozen=True, slots=True, kw_only=True)
class Action:
    """One thing the admin can do to an execution."""

    name: str
    label: str
    permission: str  #: "cancel", "retry" (or "change" for both) or "delete"
    refusal: Callable[[FirestoreBackend, TaskExecution], str | None]
    #: Runs it and returns the success message; the third argument links to an
    #: execution's admin page (backend alias, execution id) -> URL.
    run: Callable[[FirestoreBackend, TaskExecution, Callable[[str, str], str]], str]


def _cancel_refusal(backend: FirestoreBackend, execution: TaskExecution) -> str | None:
    if execution.is_finished:
        return (
            f"Cannot cancel execution {execution.id!r}: it already finished ({execution.status})."
        )
    return None


def _force_cancel_refusal(backend: FirestoreBackend, execution: TaskExecution) -> str | None:
    if not backend.supports_force_cancel:
        return (
            f"Cannot force cancel execution {execution.id!r}: backend {backend.alias!r} "
            f"does not support forceful cancellation; use Cancel."
        )
    return _cancel_refusal(backend, execution)


def _retry_refusal(backend: FirestoreBackend, execution: TaskExecution) -> str | None:
    if not execution.is_finished:
        return (
            f"Cannot retry execution {execution.id!r}: it is {execution.status}; "
            f"only finished executions can be retried."
        )
    try:
        load_task(execution.task_path)
    except TaskNotImportable as exc:
        return f"Cannot retry execution {execution.id!r}: {exc}"
    return None


def _delete_refusal(backend: FirestoreBackend, execution: TaskExecution) -> str | None:
    if execution.status == TaskResultStatus.RUNNING:
        return f"Cannot delete execution {execution.id!r}: it is RUNNING; cancel it first."
    return None


def _cancel(backend: FirestoreBackend, execution: TaskExecution, *, force: bool) -> str:
    outcome = cancel(backend, execution.id, force=force)  # the backend is known: no search
    return {
        CancelOutcome.CANCELLED: f"Execution {execution.id} was cancelled before it ran.",
        CancelOutcome.REQUESTED: (
            f"Execution {execution.id} is running: it was asked to stop"
            + (" and is being stopped." if force else ".")
        ),
        CancelOutcome.ALREADY_FINISHED: f"Execution {execution.id} had already finished.",
    }[outcome]


def _retry(
    backend: FirestoreBackend, execution: TaskExecution, link: Callable[[str, str], str]
) -> str:
    task = load_task(execution.task_path).using(
        queue_name=execution.queue_name, priority=execution.priority, backend=backend.alias
    )
    result = task.enqueue(*execution.args, **execution.kwargs)
    return format_html(
        'Execution {} was retried as <a href="{}">{}</a>.',
        execution.id,
        link(backend.alias, result.id),
        result.id,
    )


def _delete(backend: FirestoreBackend, execution: TaskExecution, link: object) -> str:
    backend.executions.delete(execution.id)
    return f"Execution {execution.id} was deleted."


ACTIONS = {
    action.name: action
    for action in [
        Action(
            name="cancel",
            label="Cancel",
            permission="cancel",
            refusal=_cancel_refusal,
            run=lambda b, e, _: _cancel(b, e, force=False),
        ),
        Action(
            name="force_cancel",
            label="Force cancel",
            permission="cancel",
            refusal=_force_cancel_refusal,
            run=lambda b, e, _: _cancel(b, e, force=True),
        ),
        Action(
            name="retry",
            label="Retry (enqueue a copy)",
            permission="retry",
            refusal=_retry_refusal,
            run=_retry,
        ),
        Action(
            name="delete",
            label="Delete",
            permission="delete",
            refusal=_delete_refusal,
            run=_delete,
        ),
    ]
}
