"""Enqueue a schedule's task: once per (schedule, slot) for cron, or at once ("Run now").

Both go through the backend's one enqueue path (``FirestoreBackend.submit``), like
``enqueue()``: the same validation, producer span, dispatch and ``task_enqueued``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from ..results import FirestoreTaskResult, load_task
from ..store import ScheduledTask

if TYPE_CHECKING:
    from ..backends.base import FirestoreBackend, Reserve

logger = logging.getLogger(__name__)


def fire_slot(
    backend: FirestoreBackend, schedule: ScheduledTask, slot: datetime
) -> FirestoreTaskResult | None:
    """Enqueue ``schedule`` for ``slot``; None if that slot was already fired.

    The execution is written with the slot's reservation, in one batch, so each slot
    enqueues one execution across workers, deliveries and restarts. Raises
    TaskNotImportable if the task path no longer imports, InvalidTask if the backend
    no longer accepts the task (e.g. its queue).
    """
    result = _submit(
        backend, schedule, reserve=lambda e: backend.schedules.reserve_slot(schedule, slot, e)
    )
    if result is None:
        logger.debug("slot already fired schedule=%s slot=%s", schedule.name, slot.isoformat())
        return None
    logger.info(
        "scheduled task fired schedule=%s slot=%s execution_id=%s",
        schedule.name,
        slot.isoformat(),
        result.id,
    )
    return result


def run_now(backend: FirestoreBackend, schedule: ScheduledTask) -> FirestoreTaskResult:
    """Enqueue ``schedule`` once, now, outside its cron (the admin's "Run now").

    Not a slot: nothing is reserved, so the next slot still fires. Raises as fire_slot.
    """
    result = _submit(backend, schedule)
    assert result is not None  # only a reservation can decline the write
    return result


def _submit(
    backend: FirestoreBackend, schedule: ScheduledTask, *, reserve: Reserve | None = None
) -> FirestoreTaskResult | None:
    task = load_task(schedule.task_path).using(
        queue_name=schedule.queue_name, priority=schedule.priority, backend=backend.alias
    )
    return backend.submit(
        task,
        schedule.args,
        schedule.kwargs,
        reserve=reserve,
        scheduled_task=schedule.name,
        takes_context=schedule.takes_context or task.takes_context,
    )
