"""Unique enqueue for the backends: a task's key for a call, its checks, and the bulk path.

The store writes the key and the execution together (store.unique_keys); here a task's
``unique_key`` (a string, or a function of the call's arguments) becomes that key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Protocol

from django.tasks.exceptions import InvalidTask
from django.tasks.signals import task_enqueued

from ..exceptions import StoreUnavailable
from ..results import FirestoreTaskResult, to_task_result
from ..store import ExecutionStore, TaskExecution
from ..store.unique_keys import UniqueKeys, UniqueOutcome


class UniqueBackend(Protocol):
    """What unique enqueue needs of a backend (FirestoreBackend)."""

    @property
    def executions(self) -> ExecutionStore: ...

    @property
    def unique_keys(self) -> UniqueKeys: ...

    def dispatch_many(self, executions: Sequence[TaskExecution]) -> list[TaskExecution]: ...


def check_unique(task: Any, alias: str) -> None:
    """Raise InvalidTask unless the task's ``unique_key``/``unique_for`` are well formed."""
    key = getattr(task, "unique_key", None)
    hold_for = getattr(task, "unique_for", None)
    if key is not None and not (callable(key) or (isinstance(key, str) and key)):
        raise InvalidTask(
            f"Task unique_key must be a non-empty string or a function of the task's "
            f"arguments returning one, not {key!r}."
        )
    if hold_for is not None:
        if not isinstance(hold_for, timedelta) or hold_for <= timedelta(0):
            raise InvalidTask(
                f"Task unique_for must be a positive timedelta, not {hold_for!r} "
                f"(backend {alias!r})."
            )
        if key is None:
            raise InvalidTask("Task unique_for needs a unique_key: set both, or neither.")


def is_unique(task: Any) -> bool:
    return getattr(task, "unique_key", None) is not None


def unique_key_of(task: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> str | None:
    """The task's key for this call (its function called with the call's arguments), or
    None for a task without one; InvalidTask if the function does not return a string."""
    key = getattr(task, "unique_key", None)
    if key is None or isinstance(key, str):
        return key
    value = key(*args, **kwargs)
    if not isinstance(value, str) or not value:
        raise InvalidTask(
            f"Task {task.module_path!r}: its unique_key function returned {value!r}, "
            f"not a non-empty string."
        )
    return value


def create_unique(backend: UniqueBackend, task: Any, execution: TaskExecution) -> UniqueOutcome:
    """Write ``execution`` under the task's key for its arguments, or find the holder."""
    key = unique_key_of(task, execution.args, execution.kwargs)
    assert key is not None
    return backend.unique_keys.create(execution, key=key, hold_for=task.unique_for)


def enqueue_unique_many(
    backend: UniqueBackend, task: Any, executions: Sequence[TaskExecution]
) -> list[FirestoreTaskResult]:
    """enqueue_many() of a task with a unique key: one commit per call (each call's key
    with its execution), then the new executions dispatched together.

    A call whose key is held (by an earlier call of the list too) gets the holder's
    result. Every key and payload is checked before anything is written.
    """
    for index, execution in enumerate(executions):
        try:
            unique_key_of(task, execution.args, execution.kwargs)
        except InvalidTask as exc:
            raise InvalidTask(f"Call {index}: {exc}") from None
    backend.executions.plan_creates(executions)  # PayloadTooLarge, naming the call
    outcomes: list[UniqueOutcome] = []
    try:
        for execution in executions:
            outcomes.append(create_unique(backend, task, execution))
    except StoreUnavailable as exc:
        enqueued = _results(backend, task, outcomes)
        raise StoreUnavailable(
            f"{exc} The first {len(enqueued)} of {len(executions)} calls were enqueued "
            f"or found their key held (their results are in .enqueued); the others were "
            f"not, unless maybe_written.",
            execution_id=exc.execution_id,
            maybe_written=exc.maybe_written,
            enqueued=enqueued,
        ) from exc
    return _results(backend, task, outcomes)


def _results(
    backend: UniqueBackend, task: Any, outcomes: Sequence[UniqueOutcome]
) -> list[FirestoreTaskResult]:
    """The results in call order: new executions dispatched and signalled, holders as read."""
    new = iter(backend.dispatch_many([o.execution for o in outcomes if o.created]))
    results = []
    for outcome in outcomes:
        result = to_task_result(next(new) if outcome.created else outcome.execution, task)
        if outcome.created:
            task_enqueued.send(type(backend), task_result=result)
        results.append(result)
    return results
