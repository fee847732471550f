"""Our Task (adds ``timeout``) and TaskContext (adds cancellation awareness)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.tasks import Task as DjangoTask
from django.tasks import TaskContext as DjangoTaskContext

if TYPE_CHECKING:  # generic only in django-stubs
    _TaskBase = DjangoTask[Any, Any]
    _ContextBase = DjangoTaskContext[Any, Any]
else:
    _TaskBase = DjangoTask
    _ContextBase = DjangoTaskContext


@dataclass(frozen=True, slots=True, kw_only=True)
class Task(_TaskBase):
    """A Django Task with an optional per-attempt ``timeout``: ``@task(timeout=timedelta(...))``."""

    timeout: timedelta | None = None


# django-stubs declares TaskContext unfrozen; at runtime it is frozen, so ours must be too.
@dataclass(frozen=True, slots=True, kw_only=True)
class TaskContext(_ContextBase):  # type: ignore[misc]
    """The context a ``takes_context`` task receives: attempt number and cancellation."""

    #: Set when the execution is cancelled or this attempt lost its lease.
    cancelled: threading.Event = field(default_factory=threading.Event, repr=False)
    #: Re-reads the execution and reports whether it is cancelled (used by refresh=True).
    check_cancelled: Any = field(default=None, repr=False)
