"""Django Task Framework backends on Google Cloud, with all state in Firestore.

Public API::

    from django_tasks_fs import (
        cancel_task, is_task_cancelled, schedule_task, delete_scheduled_task,
        TaskCancelledError, PermanentTaskError, TaskTimeout,
    )
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .cancellation import cancel_task, is_task_cancelled
    from .exceptions import PermanentTaskError, TaskCancelledError, TaskTimeout
    from .scheduling import delete_scheduled_task, rename_scheduled_task, schedule_task

__all__ = [
    "PermanentTaskError",
    "TaskCancelledError",
    "TaskTimeout",
    "cancel_task",
    "delete_scheduled_task",
    "is_task_cancelled",
    "rename_scheduled_task",
    "schedule_task",
]

_LAZY = {
    "cancel_task": ".cancellation",
    "is_task_cancelled": ".cancellation",
    "schedule_task": ".scheduling",
    "rename_scheduled_task": ".scheduling",
    "delete_scheduled_task": ".scheduling",
    "PermanentTaskError": ".exceptions",
    "TaskCancelledError": ".exceptions",
    "TaskTimeout": ".exceptions",
}


def __getattr__(name: str) -> Any:
    # Imported on first use: the app registry loads this package before settings are ready.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
