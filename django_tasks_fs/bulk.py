"""Enqueue many calls of one task at once: ``enqueue_many(task, [(args, kwargs), ...])``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from asgiref.sync import sync_to_async

from .backends.base import Call
from .registry import get_backend
from .results import FirestoreTaskResult


def enqueue_many(task: Any, calls: Iterable[Call]) -> list[FirestoreTaskResult]:
    """Enqueue ``task`` once per ``(args, kwargs)`` pair of ``calls``, in batched writes;
    return the READY results in the order of ``calls``.

    The task's options (backend, queue, priority, run_after: set them with
    ``task.using(...)``) apply to every call. Every call is checked as ``enqueue()``
    checks one before anything is written. Raises UnknownBackend when the task's
    backend is not a django_tasks_fs one; StoreUnavailable when a commit failed (the
    commits run concurrently: its ``enqueued`` holds the results of the calls that were
    enqueued, ``not_enqueued`` the positions of those that were not). See the backend's
    ``enqueue_many()``.
    """
    return get_backend(task.backend).enqueue_many(task, calls)


async def aenqueue_many(task: Any, calls: Iterable[Call]) -> list[FirestoreTaskResult]:
    """See enqueue_many()."""
    return await sync_to_async(enqueue_many, thread_sensitive=True)(task, calls)
