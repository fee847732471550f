"""Our Task (adds a per-task retry and timeout policy) and TaskContext (adds cancellation
awareness)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.tasks import Task as DjangoTask
from django.tasks import TaskContext as DjangoTaskContext

from .policy import POLICY_FIELDS, BackoffSpec

if TYPE_CHECKING:  # generic only in django-stubs
    _TaskBase = DjangoTask[Any, Any]
    _ContextBase = DjangoTaskContext[Any, Any]
else:
    _TaskBase = DjangoTask
    _ContextBase = DjangoTaskContext


@dataclass(frozen=True, slots=True, kw_only=True)
class Task(_TaskBase):
    """A Django Task with its own retry and timeout policy (see policy.py):
    ``@task(max_attempts=5, backoff=timedelta(seconds=30), timeout=timedelta(minutes=2))``.

    None inherits the backend's OPTIONS, then the platform's limit. Invalid values are
    refused with InvalidTask when the task is declared or ``using()`` is called.
    """

    # -- policy (django_tasks_fs.policy) -------------------------------------------------
    timeout: timedelta | None = None  #: longest run of one attempt
    max_attempts: int | None = None  #: attempts in total, the first included
    #: Wait before a retry: a timedelta or seconds, a Backoff, or a callable
    #: ``(exception, task_result) -> timedelta | seconds | None`` (None: no retry).
    backoff: BackoffSpec | None = None
    #: Retry only after these exceptions (None: after any); PermanentTaskError never.
    retry_on: tuple[type[BaseException], ...] | None = None
    dont_retry_on: tuple[type[BaseException], ...] = ()  #: never retry after these
    run_once: bool | None = None  #: never start a second attempt, even after a lost worker

    def using(
        self,
        *,
        priority: int | None = None,
        queue_name: str | None = None,
        run_after: datetime | None = None,
        backend: str | None = None,
        **policy: Any,
    ) -> Task:
        """A copy with other defaults; also takes the policy fields (``max_attempts=...``)."""
        unknown = sorted(set(policy) - set(POLICY_FIELDS))
        if unknown:
            raise TypeError(
                f"using() got unexpected keyword arguments {unknown}; the policy fields "
                f"are {', '.join(POLICY_FIELDS)}."
            )
        task: Task = DjangoTask.using(  # type: ignore[assignment]
            self, priority=priority, queue_name=queue_name, run_after=run_after, backend=backend
        )
        return replace(task, **policy) if policy else task


# django-stubs declares TaskContext unfrozen; at runtime it is frozen, so ours must be too.
@dataclass(frozen=True, slots=True, kw_only=True)
class TaskContext(_ContextBase):  # type: ignore[misc]
    """The context a ``takes_context`` task receives: attempt number and cancellation."""

    #: Set when the execution is cancelled or this attempt lost its lease.
    cancelled: threading.Event = field(default_factory=threading.Event, repr=False)
    #: Re-reads the execution and reports whether it is cancelled (used by refresh=True).
    check_cancelled: Any = field(default=None, repr=False)
