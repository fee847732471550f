"""Our Task (adds ``timeout``) and TaskContext (adds cancellation awareness)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Self, cast

from django.tasks import Task as DjangoTask
from django.tasks import TaskContext as DjangoTaskContext

if TYPE_CHECKING:  # generic only in django-stubs
    _TaskBase = DjangoTask[Any, Any]
    _ContextBase = DjangoTaskContext[Any, Any]
else:
    _TaskBase = DjangoTask
    _ContextBase = DjangoTaskContext

#: ``using()``'s default for an option left as it is (None clears one).
_KEEP: Any = object()


@dataclass(frozen=True, slots=True, kw_only=True)
class Task(_TaskBase):
    """A Django Task with an optional per-attempt ``timeout``: ``@task(timeout=timedelta(...))``."""

    timeout: timedelta | None = None

    # -- unique enqueue (docs/howto/unique-enqueue.md) ------------------------------------
    #: While an execution with this key is READY or RUNNING, enqueue() returns it instead
    #: of creating another: a string, or a function of the call's arguments returning one.
    unique_key: str | Callable[..., str] | None = None
    #: Also return it for this long after its enqueue, even once finished (a throttle).
    unique_for: timedelta | None = None

    def using(self, *, unique_key: Any = _KEEP, unique_for: Any = _KEEP, **changes: Any) -> Self:
        """Django's ``using()``, plus ``unique_key`` and ``unique_for`` (None clears them)."""
        task = _TaskBase.using(self, **changes)
        unique = {"unique_key": unique_key, "unique_for": unique_for}
        unique = {name: value for name, value in unique.items() if value is not _KEEP}
        return cast(Self, replace(task, **unique) if unique else task)


# django-stubs declares TaskContext unfrozen; at runtime it is frozen, so ours must be too.
@dataclass(frozen=True, slots=True, kw_only=True)
class TaskContext(_ContextBase):  # type: ignore[misc]
    """The context a ``takes_context`` task receives: attempt number and cancellation."""

    #: Set when the execution is cancelled or this attempt lost its lease.
    cancelled: threading.Event = field(default_factory=threading.Event, repr=False)
    #: Re-reads the execution and reports whether it is cancelled (used by refresh=True).
    check_cancelled: Any = field(default=None, repr=False)
