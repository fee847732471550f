"""The django_tasks_fs backends configured in ``TASKS``: the one place that finds them.

Every caller that needs "the backend called X", "every backend of this kind" or "the
backend that holds this execution" asks here, so an unknown alias is reported the same
way everywhere (naming the alias and the configured ones).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, overload

from django.tasks import task_backends

from .backends.base import FirestoreBackend
from .exceptions import ExecutionNotFound, UnknownBackend
from .store import TaskExecution


def _label(kind: type[Any]) -> str:
    return "django_tasks_fs" if kind is FirestoreBackend else kind.__name__


def _listed(aliases: Iterable[str]) -> str:
    return ", ".join(repr(a) for a in aliases) or "none"


@overload
def firestore_backends() -> dict[str, FirestoreBackend]: ...
@overload
def firestore_backends[B: FirestoreBackend](kind: type[B]) -> dict[str, B]: ...
def firestore_backends(kind: type[Any] = FirestoreBackend) -> dict[str, Any]:
    """The configured backends of ``kind``, by alias, in ``TASKS`` order."""
    found = (task_backends[alias] for alias in task_backends.settings)
    return {b.alias: b for b in found if isinstance(b, kind)}


@overload
def get_backend(alias: str) -> FirestoreBackend: ...
@overload
def get_backend[B: FirestoreBackend](alias: str, kind: type[B]) -> B: ...
def get_backend(alias: str, kind: type[Any] = FirestoreBackend) -> Any:
    """The backend ``alias``; raise UnknownBackend if it is not a configured ``kind``."""
    found = firestore_backends(kind)
    if alias in found:
        return found[alias]
    label = _label(kind)
    if alias in task_backends.settings:
        what = f"is a {type(task_backends[alias]).__name__}, not a {label} backend"
    else:
        what = "is not in TASKS"
    raise UnknownBackend(f"Task backend {alias!r} {what} ({label} backends: {_listed(found)}).")


@overload
def select_backends(aliases: Iterable[str] = ()) -> list[FirestoreBackend]: ...
@overload
def select_backends[B: FirestoreBackend](aliases: Iterable[str], kind: type[B]) -> list[B]: ...
def select_backends(aliases: Iterable[str] = (), kind: type[Any] = FirestoreBackend) -> list[Any]:
    """The backends named (every backend of ``kind`` when none is), in the order given.

    Raises UnknownBackend naming every alias that is not a configured ``kind``.
    """
    found = firestore_backends(kind)
    label = _label(kind)
    wanted = list(dict.fromkeys(aliases))
    unknown = [a for a in wanted if a not in found]
    if unknown:
        raise UnknownBackend(
            f"Not {label} aliases: {', '.join(unknown)} ({label} aliases: {_listed(found)})."
        )
    return [found[a] for a in wanted] if wanted else list(found.values())


def backend_holding(execution_id: str) -> FirestoreBackend:
    """The backend an execution belongs to, searched in every configured store.

    That is the backend named in its document, or, if that alias is no longer
    configured, the backend whose store holds it. Raises ExecutionNotFound.
    """
    return locate_execution(execution_id)[0]


def locate_execution(execution_id: str) -> tuple[FirestoreBackend, TaskExecution | None]:
    """``backend_holding``, and the execution as read there when that backend's store
    is the one it was read from (None otherwise): a claim can start from it instead of
    reading it again."""
    backends = firestore_backends()
    for backend in backends.values():
        try:
            execution = backend.executions.get(execution_id)
        except ExecutionNotFound:
            continue
        holder = backends.get(execution.backend, backend)
        same = _store_of(holder) == _store_of(backend)
        return holder, execution if same else None
    raise ExecutionNotFound(f"No task execution with id {execution_id!r} in any backend.")


def _store_of(backend: FirestoreBackend) -> tuple[object, ...]:
    """What makes two backends' execution documents the same documents."""
    s = backend.executions.settings
    return (s.store, s.resolved_project(), s.database, s.executions_collection)
