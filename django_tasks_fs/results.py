"""Build ``django.tasks.TaskResult`` objects from execution documents."""

from __future__ import annotations

import keyword
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.tasks import Task, TaskResult
from django.tasks.base import TaskError
from django.utils.module_loading import import_string

from .exceptions import TaskNotImportable as TaskNotImportable  # re-exported (moved there)
from .store.documents import TaskExecution

#: Longer task paths are refused without importing anything.
MAX_TASK_PATH_LENGTH = 500


if TYPE_CHECKING:  # generic only in django-stubs
    _TaskResultBase = TaskResult[Any, Any]
else:
    _TaskResultBase = TaskResult


# django-stubs declares TaskResult unfrozen; at runtime it is frozen, so ours must be too.
@dataclass(frozen=True, slots=True, kw_only=True)
class FirestoreTaskResult(_TaskResultBase):  # type: ignore[misc]
    """A TaskResult whose ``attempts`` comes from the stored counter.

    Django derives attempts from ``len(worker_ids)``; ours is a capped history, so the
    explicit counter stays right after any number of attempts.
    """

    attempt_count: int = field(default=0, repr=False)

    @property
    def attempts(self) -> int:
        return self.attempt_count

    def refresh(self) -> None:
        """Reload from Firestore, including the attempt counter."""
        _copy_state(self.task.get_backend().get_result(self.id), self)

    async def arefresh(self) -> None:
        """Reload from Firestore, including the attempt counter."""
        _copy_state(await self.task.get_backend().aget_result(self.id), self)


_REFRESHED = (
    "status",
    "enqueued_at",
    "started_at",
    "finished_at",
    "last_attempted_at",
    "errors",
    "worker_ids",
    "_return_value",
    "attempt_count",
)


def _copy_state(source: TaskResult[Any, Any], target: TaskResult[Any, Any]) -> None:
    # TaskResult is frozen; this module is the one place that writes its fields.
    for name in _REFRESHED:
        object.__setattr__(target, name, getattr(source, name))


def check_task_path(task_path: object) -> str:
    """Return ``task_path`` if it has the form of a task's path, else raise TaskNotImportable.

    The form, checked before anything is imported: ``module.name`` dotted Python
    identifiers, no keyword or ``__dunder__`` part (``__main__`` would run a program),
    at most MAX_TASK_PATH_LENGTH characters.
    """
    shown = repr(task_path)
    if len(shown) > 100:
        shown = shown[:100] + "..."
    if not isinstance(task_path, str):
        raise TaskNotImportable(f"Task path {shown} is a {type(task_path).__name__}, not a str.")
    parts = task_path.split(".")
    if (
        len(task_path) > MAX_TASK_PATH_LENGTH
        or len(parts) < 2
        or not all(_is_path_part(part) for part in parts)
    ):
        raise TaskNotImportable(
            f"Task path {shown} is not the dotted path of a task (Python identifiers "
            f"like 'myapp.tasks.send_report', at most {MAX_TASK_PATH_LENGTH} characters, "
            f"no keyword or __dunder__ part); nothing was imported."
        )
    return task_path


def _is_path_part(part: str) -> bool:
    return (
        part.isidentifier()
        and not keyword.iskeyword(part)
        and not (part.startswith("__") and part.endswith("__"))
    )


def load_task(task_path: str) -> Task[Any, Any]:
    """Import the ``@task`` at ``task_path``; raise TaskNotImportable with the reason.

    Only a ``django.tasks.Task`` is ever returned: a plain function, a class or any
    other object at that path is refused, so nothing else can be run as a task.
    """
    check_task_path(task_path)
    try:
        found = import_string(task_path)
    except Exception as exc:  # ImportError, or whatever the module raised while importing
        raise TaskNotImportable(
            f"Task {task_path!r} cannot be imported: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(found, Task):
        raise TaskNotImportable(f"{task_path!r} is a {type(found).__name__}, not a @task.")
    return found


def to_task_result(
    execution: TaskExecution, task: Task[Any, Any] | None = None
) -> FirestoreTaskResult:
    """The TaskResult view of ``execution`` (its task imported from ``task_path``)."""
    task = task if task is not None else load_task(execution.task_path)
    task = task.using(
        priority=execution.priority, queue_name=execution.queue_name, backend=execution.backend
    )
    if execution.run_after > execution.enqueued_at and task.get_backend().supports_defer:
        task = task.using(run_after=execution.run_after)
    result = FirestoreTaskResult(
        task=task,
        id=execution.id,
        status=execution.status,
        enqueued_at=execution.enqueued_at,
        started_at=execution.started_at,
        finished_at=execution.finished_at,
        last_attempted_at=execution.last_attempted_at,
        args=execution.args,
        kwargs=execution.kwargs,
        backend=execution.backend,
        errors=[
            TaskError(exception_class_path=e.exception_class_path, traceback=e.traceback)
            for e in execution.errors
        ],
        worker_ids=list(execution.worker_ids),
        attempt_count=execution.attempts,
    )
    set_return_value(result, execution.return_value)
    return result


def set_return_value(result: TaskResult[Any, Any], value: Any) -> None:
    """Set the (init=False) return value of a TaskResult."""
    object.__setattr__(result, "_return_value", value)
