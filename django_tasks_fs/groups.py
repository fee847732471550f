"""Task groups: enqueue many calls at once, and a callback task once all of them finished.

``enqueue_group(task, [(args, kwargs), ...], on_complete=report)`` (or a list of
``(task, args, kwargs)`` members, tasks may differ) writes the group document, then the
members through ``enqueue_many``. When the last member finishes, ``on_complete`` is
enqueued once, called as ``on_complete(group_id, {"size", "succeeded", "failed"})``;
``on_success`` likewise, only if every member succeeded. See group_completion.py for
when that is checked and store/groups.py for why it happens exactly once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.tasks.exceptions import InvalidTask

from .backends.base import Call, FirestoreBackend, checked_call
from .exceptions import GroupNotFound, StoreUnavailable
from .group_completion import abandon_group, check_group
from .registry import firestore_backends, get_backend
from .results import FirestoreTaskResult, to_task_result
from .store import new_execution_id
from .store.groups import GroupCallback, GroupStatus, TaskGroup

#: One member of a mixed group: a task (maybe ``task.using(...)``), its args and kwargs.
Member = tuple[Any, Sequence[Any], dict[str, Any]]


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupResult:
    """A group as last read: its state and its members' results."""

    id: str
    backend: str
    size: int  #: how many members it has
    status: GroupStatus  #: OPEN until every member finished, then COMPLETE
    members: tuple[
        FirestoreTaskResult, ...
    ]  #: in enqueue order from enqueue_group(); by id from get_group()
    succeeded: int | None = None  #: once COMPLETE: members SUCCESSFUL
    failed: int | None = None  #: once COMPLETE: members FAILED
    completed_at: datetime | None = None
    callback_ids: tuple[str, ...] = ()  #: the callback executions enqueued (result ids)

    @property
    def is_complete(self) -> bool:
        return self.status == GroupStatus.COMPLETE

    def refresh(self) -> GroupResult:
        """Read the group again (see get_group)."""
        return get_group(self.id, backend=self.backend)

    async def arefresh(self) -> GroupResult:
        """See refresh()."""
        return await aget_group(self.id, backend=self.backend)


def enqueue_group(
    task_or_members: Any,
    calls: Iterable[Call] | None = None,
    *,
    on_complete: Any = None,
    on_success: Any = None,
) -> GroupResult:
    """Enqueue a group of tasks; enqueue ``on_complete`` (and ``on_success`` if every
    member succeeded) once, when the last member finished.

    Members are either ``task, [(args, kwargs), ...]`` (as for enqueue_many) or one
    list of ``(task, args, kwargs)``. Every member and callback must use the same
    django_tasks_fs backend. A callback is a task, or ``(task, args, kwargs)``; it is
    called as ``task(group_id, summary, *args, **kwargs)``, ``summary`` being
    ``{"size": ..., "succeeded": ..., "failed": ...}``. What
    ``enqueue()`` checks is checked for every member before anything is written
    (InvalidTask, NotJSONSerializable, PayloadTooLarge naming the member). Raises
    StoreUnavailable as enqueue_many() does; the group is then marked ABANDONED and
    never completes (its ``enqueued`` members may still run).
    """
    chunks = _chunks(task_or_members, calls)
    size = sum(len(chunk_calls) for _, chunk_calls, _ in chunks)
    if size == 0:
        raise ValueError("A group needs at least one member.")
    callbacks = [_callback_task(c) for c in (on_complete, on_success)]
    backend = _one_backend([task for task, _, _ in chunks], *callbacks)
    for task, chunk_calls, first in chunks:
        backend.validate_task(task)
        if getattr(task, "unique_key", None) is not None:
            # A held key would return another execution in the member's place, and the
            # group would wait for a member that never finishes as one of its own.
            raise InvalidTask(
                f"Member {first} has a unique_key: a group's members cannot be unique "
                f"(use task.using(unique_key=None))."
            )
        for offset, call in enumerate(chunk_calls):
            checked_call(first + offset, call)
    group = backend.groups.create(
        TaskGroup(
            id=new_execution_id(),
            backend=backend.alias,
            size=size,
            on_complete=_callback(backend, on_complete, "on_complete"),
            on_success=_callback(backend, on_success, "on_success"),
            created_at=backend.groups.clock.now(),
        ),
        timeout=backend.enqueue_timeout,
    )
    results: list[FirestoreTaskResult] = []
    try:
        for task, chunk_calls, _ in chunks:
            results += backend.enqueue_many(
                task, chunk_calls, group_id=group.id, group_size=group.size
            )
    except StoreUnavailable:
        with contextlib.suppress(StoreUnavailable):  # else the sweepers will
            abandon_group(backend, group)
        raise
    return _result(group, results)


async def aenqueue_group(
    task_or_members: Any,
    calls: Iterable[Call] | None = None,
    *,
    on_complete: Any = None,
    on_success: Any = None,
) -> GroupResult:
    """See enqueue_group()."""
    return await sync_to_async(enqueue_group, thread_sensitive=True)(
        task_or_members, calls, on_complete=on_complete, on_success=on_success
    )


def get_group(group_id: str, *, backend: str | None = None) -> GroupResult:
    """Read a group and its members' results; raise GroupNotFound.

    ``backend`` (its alias) saves looking in every configured store. An OPEN group
    whose members all finished is completed on the way (its callbacks enqueued), as
    the sweepers would.
    """
    holder = _backend_holding(group_id) if backend is None else get_backend(backend)
    group = holder.groups.get(group_id)
    if group.status == GroupStatus.OPEN:
        group = check_group(holder, group_id, known=group) or group
    members = [to_task_result(e) for e in holder.groups.members(group_id)]
    return _result(group, members)


async def aget_group(group_id: str, *, backend: str | None = None) -> GroupResult:
    """See get_group()."""
    return await sync_to_async(get_group, thread_sensitive=True)(group_id, backend=backend)


def _chunks(
    task_or_members: Any, calls: Iterable[Call] | None
) -> list[tuple[Any, list[Call], int]]:
    """Members as (task, calls, index of the first) runs of one task, in order."""
    if calls is not None:
        return [(task_or_members, list(calls), 0)]
    chunks: list[tuple[Any, list[Call], int]] = []
    for index, member in enumerate(task_or_members):
        if not (isinstance(member, (tuple, list)) and len(member) == 3):
            raise TypeError(
                f"Member {index} must be a (task, args, kwargs) triple, not {member!r}."
            )
        task, args, kwargs = member
        if chunks and chunks[-1][0] == task:
            chunks[-1][1].append((args, kwargs))
        else:
            chunks.append((task, [(args, kwargs)], index))
    return chunks


def _one_backend(tasks: list[Any], *callbacks: Any) -> FirestoreBackend:
    aliases = {task.backend for task in tasks} | {c.backend for c in callbacks if c is not None}
    if len(aliases) != 1:
        raise InvalidTask(
            f"A group's members and callbacks must use one backend, not {sorted(aliases)!r}."
        )
    return get_backend(aliases.pop())


def _callback_task(callback: Any) -> Any:
    """The task of a callback given as a task or a (task, args, kwargs) triple."""
    if isinstance(callback, (tuple, list)):
        return callback[0]
    return callback


def _callback(backend: FirestoreBackend, callback: Any, name: str) -> GroupCallback | None:
    """The stored form of ``on_complete`` / ``on_success`` (checked as enqueue() would)."""
    if callback is None:
        return None
    if isinstance(callback, (tuple, list)):
        if len(callback) != 3:
            raise TypeError(f"{name} must be a task or a (task, args, kwargs) triple.")
        task, args, kwargs = callback
    else:
        task, args, kwargs = callback, (), {}
    backend.validate_task(task)
    checked_args, checked_kwargs = checked_call(0, (args, kwargs))
    return GroupCallback(
        task_path=task.module_path,
        queue_name=task.queue_name,
        priority=task.priority,
        args=checked_args,
        kwargs=checked_kwargs,
    )


def _backend_holding(group_id: str) -> FirestoreBackend:
    for backend in firestore_backends().values():
        try:
            group = backend.groups.get(group_id)
        except GroupNotFound:
            continue
        return get_backend(group.backend) if group.backend != backend.alias else backend
    raise GroupNotFound(f"No task group with id {group_id!r} in any backend.")


def _result(group: TaskGroup, members: list[FirestoreTaskResult]) -> GroupResult:
    return GroupResult(
        id=group.id,
        backend=group.backend,
        size=group.size,
        status=group.status,
        members=tuple(members),
        succeeded=group.succeeded,
        failed=group.failed,
        completed_at=group.completed_at,
        callback_ids=tuple(group.callback_ids),
    )
