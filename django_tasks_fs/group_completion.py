"""Complete a task group: enqueue its callbacks once every member finished.

Checked after each member's finishing write (``execution.attempt``), again when a
duplicate delivery finds a member finished (its first worker may have died between the
finishing write and this check), and by the sweepers (``run_tasks`` every minute or so,
``sweep_tasks`` / the ``sweep/`` endpoint) for groups whose last check never happened.
Every check is harmless to repeat: the store completes a group in one commit that
creates the callback executions under ids derived from the group id, so only one
checker's commit is taken (see store.groups).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.tasks.signals import task_enqueued

from .exceptions import GroupNotFound
from .results import load_task, to_task_result
from .store import TaskExecution
from .store.groups import CallbackKind, GroupStatus, TaskGroup, callback_execution_id

if TYPE_CHECKING:
    from .backends.base import FirestoreBackend

logger = logging.getLogger(__name__)

#: An OPEN group younger than this is left to its members' own checks by the sweepers.
DEFAULT_GROUP_GRACE = timedelta(seconds=60)
#: An OPEN group older than this with fewer members than its size can never complete
#: (``enqueue_group`` was interrupted, or a member was deleted unfinished): the sweepers
#: mark it ABANDONED. Far longer than any enqueue_group takes to write its members.
GROUP_ENQUEUE_DEADLINE = timedelta(hours=1)


def member_finished(backend: FirestoreBackend, execution: TaskExecution) -> None:
    """After a member's final write (or a delivery that found it final): complete its
    group if it was the last. Never raises: a failed check is left to the sweepers."""
    if execution.group_id is None or not execution.is_finished:
        return
    try:
        check_group(backend, execution.group_id, size=execution.group_size)
    except GroupNotFound:
        logger.debug("no group document group_id=%s", execution.group_id)
    except Exception:
        logger.warning(
            "group check failed group_id=%s execution_id=%s (the sweeper will retry)",
            execution.group_id,
            execution.id,
            exc_info=True,
        )


def check_group(
    backend: FirestoreBackend,
    group_id: str,
    *,
    size: int | None = None,
    known: TaskGroup | None = None,
) -> TaskGroup | None:
    """Complete the group if every member finished; return it as it now stands (None:
    not every member finished). ``size`` (the member's copy of it) lets a member count
    before reading the group; ``known`` (an OPEN group just read) saves that read."""
    store = backend.groups
    finished: int | None = None
    if size is not None:
        finished = store.count_finished(group_id)
        if finished < size:
            return None
    group = known if known is not None else store.get(group_id)
    if group.status != GroupStatus.OPEN:
        return group
    if finished is None:
        finished = store.count_finished(group_id)
    if finished < group.size:
        return None
    succeeded = store.count_succeeded(group_id)
    failed = group.size - succeeded
    now = store.clock.now()
    callbacks = _callbacks(backend, group, succeeded=succeeded, failed=failed)
    written = store.complete(
        group,
        [execution for _, execution in callbacks],
        succeeded=succeeded,
        failed=failed,
        expires_at=_expiry(backend, now),
    )
    if written is None:
        logger.debug("group completed by another checker group_id=%s", group_id)
        return None
    logger.info(
        "group complete group_id=%s size=%d succeeded=%d failed=%d callbacks=%d",
        group.id,
        group.size,
        succeeded,
        failed,
        len(callbacks),
    )
    dispatched = backend.dispatch_many([execution for _, execution in callbacks])
    for (task, _), execution in zip(callbacks, dispatched, strict=True):
        task_enqueued.send(type(backend), task_result=to_task_result(execution, task))
    return written


def summary_of(group: TaskGroup, *, succeeded: int, failed: int) -> dict[str, int]:
    """What a callback receives after the group id."""
    return {"size": group.size, "succeeded": succeeded, "failed": failed}


def _callbacks(
    backend: FirestoreBackend, group: TaskGroup, *, succeeded: int, failed: int
) -> list[tuple[Any, TaskExecution]]:
    """The callback executions to create (not written): on_complete, and on_success if
    no member failed; each called with (group id, summary, *args, **kwargs)."""
    wanted = [(CallbackKind.ON_COMPLETE, group.on_complete)]
    if failed == 0:
        wanted.append((CallbackKind.ON_SUCCESS, group.on_success))
    summary = summary_of(group, succeeded=succeeded, failed=failed)
    built = []
    for kind, spec in wanted:
        if spec is None:
            continue
        task = load_task(spec.task_path).using(
            backend=backend.alias, queue_name=spec.queue_name, priority=spec.priority
        )
        execution = backend.build_execution(task, [group.id, summary, *spec.args], spec.kwargs)
        built.append((task, execution.evolve(id=callback_execution_id(group.id, kind))))
    return built


def _expiry(backend: FirestoreBackend, now: datetime, *, failed: bool = False) -> datetime | None:
    settings = backend.executions.settings
    keep = settings.retention_failed if failed else settings.retention_successful
    return None if keep is None else now + keep


def abandon_group(backend: FirestoreBackend, group: TaskGroup, *, known: bool = False) -> bool:
    """Mark ``group`` ABANDONED (kept as long as a failed execution); with ``known``,
    only if it is still the version read. Whether it was written."""
    store = backend.groups
    return store.abandon(
        group.id,
        expires_at=_expiry(backend, store.clock.now(), failed=True),
        known=group if known else None,
    )


def _abandon_if_incomplete(backend: FirestoreBackend, group: TaskGroup) -> bool:
    """Abandon an old OPEN group whose members are not all there (one count)."""
    existing = backend.groups.count_members(group.id)
    if existing >= group.size or not abandon_group(backend, group, known=True):
        return False
    logger.warning(
        "group abandoned group_id=%s: %d of its %d members exist (enqueue_group was "
        "interrupted, or members were deleted unfinished); its callbacks will not run",
        group.id,
        existing,
        group.size,
    )
    return True


def sweep_groups(
    backend: FirestoreBackend, *, grace: timedelta = DEFAULT_GROUP_GRACE, limit: int = 100
) -> int:
    """Check ``backend``'s OPEN groups older than ``grace``; return how many completed.

    One query, then one count per OPEN group found (a group whose members still run
    is counted at every sweep)."""
    store = backend.groups
    completed = 0
    now = store.clock.now()
    for group in store.open_groups(created_before=now - grace, limit=limit):
        if group.backend != backend.alias:
            continue
        try:
            after = check_group(backend, group.id, known=group)
            if after is None and group.created_at < now - GROUP_ENQUEUE_DEADLINE:
                # Left OPEN, it would be counted at every sweep and, among the oldest,
                # keep younger groups out of the sweep's limit.
                _abandon_if_incomplete(backend, group)
        except Exception:
            logger.warning("group check failed group_id=%s", group.id, exc_info=True)
            continue
        if after is not None and after.status == GroupStatus.COMPLETE:
            completed += 1
    if completed:
        logger.info("group sweep backend=%s completed=%d", backend.alias, completed)
    return completed
