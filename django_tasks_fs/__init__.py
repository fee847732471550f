"""Django Task Framework backends on Google Cloud, with all state in Firestore.

The public API is ``__all__`` (documented in docs/reference/api.md; a test keeps the
two equal): the functions a project calls, the values they return, and every
exception a project can catch or raise (``exceptions`` draws the tree).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .bulk import aenqueue_many, enqueue_many
    from .cancellation import cancel_task, is_task_cancelled
    from .exceptions import (
        ContentionError,
        ExecutionNotFound,
        GoogleCloudError,
        GroupNotFound,
        MissingCloudResource,
        NotJSONSerializable,
        PayloadError,
        PayloadTooLarge,
        PermanentTaskError,
        ScheduleNotFound,
        StoreNotConfigured,
        StoreUnavailable,
        TaskCancelledError,
        TaskFsError,
        TaskNotImportable,
        TaskTimeout,
        UnknownBackend,
        WorkerLost,
        WorkerStartError,
    )
    from .groups import GroupResult, aenqueue_group, aget_group, enqueue_group, get_group
    from .scheduling import delete_scheduled_task, rename_scheduled_task, schedule_task
    from .store import CancelOutcome, ScheduledTask

    __version__: str

__all__ = [
    "CancelOutcome",
    "ContentionError",
    "ExecutionNotFound",
    "GoogleCloudError",
    "GroupNotFound",
    "GroupResult",
    "MissingCloudResource",
    "NotJSONSerializable",
    "PayloadError",
    "PayloadTooLarge",
    "PermanentTaskError",
    "ScheduleNotFound",
    "ScheduledTask",
    "StoreNotConfigured",
    "StoreUnavailable",
    "TaskCancelledError",
    "TaskFsError",
    "TaskNotImportable",
    "TaskTimeout",
    "UnknownBackend",
    "WorkerLost",
    "WorkerStartError",
    "__version__",
    "aenqueue_group",
    "aenqueue_many",
    "aget_group",
    "cancel_task",
    "delete_scheduled_task",
    "enqueue_group",
    "enqueue_many",
    "get_group",
    "is_task_cancelled",
    "rename_scheduled_task",
    "schedule_task",
]

#: Where each name of ``__all__`` lives (``__version__`` comes from the installed metadata).
_LAZY = {
    "enqueue_many": ".bulk",
    "aenqueue_many": ".bulk",
    "enqueue_group": ".groups",
    "aenqueue_group": ".groups",
    "get_group": ".groups",
    "aget_group": ".groups",
    "GroupResult": ".groups",
    "cancel_task": ".cancellation",
    "is_task_cancelled": ".cancellation",
    "schedule_task": ".scheduling",
    "rename_scheduled_task": ".scheduling",
    "delete_scheduled_task": ".scheduling",
    "CancelOutcome": ".store",
    "ScheduledTask": ".store",
    "ContentionError": ".exceptions",
    "ExecutionNotFound": ".exceptions",
    "GoogleCloudError": ".exceptions",
    "GroupNotFound": ".exceptions",
    "MissingCloudResource": ".exceptions",
    "NotJSONSerializable": ".exceptions",
    "PayloadError": ".exceptions",
    "PayloadTooLarge": ".exceptions",
    "PermanentTaskError": ".exceptions",
    "ScheduleNotFound": ".exceptions",
    "StoreNotConfigured": ".exceptions",
    "StoreUnavailable": ".exceptions",
    "TaskCancelledError": ".exceptions",
    "TaskFsError": ".exceptions",
    "TaskNotImportable": ".exceptions",
    "TaskTimeout": ".exceptions",
    "UnknownBackend": ".exceptions",
    "WorkerLost": ".exceptions",
    "WorkerStartError": ".exceptions",
}


def __getattr__(name: str) -> Any:
    # Imported on first use: the app registry loads this package before settings are ready.
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    if name == "__version__":
        return importlib.import_module("importlib.metadata").version("django-tasks-fs")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
