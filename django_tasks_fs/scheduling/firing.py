"""Enqueue the execution for one slot of a schedule, exactly once per (schedule, slot)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from django.tasks.signals import task_enqueued

from ..results import load_task, to_task_result
from ..store import ScheduledTask, TaskExecution

if TYPE_CHECKING:
    from ..backends.base import FirestoreBackend

logger = logging.getLogger(__name__)


def fire_slot(
    backend: FirestoreBackend, schedule: ScheduledTask, slot: datetime
) -> TaskExecution | None:
    """Enqueue ``schedule`` for ``slot``; None if that slot was already fired.

    Raises TaskNotImportable if the scheduled task path no longer imports.
    """
    task = load_task(schedule.task_path).using(
        queue_name=schedule.queue_name, priority=schedule.priority, backend=backend.alias
    )
    execution = backend.build_execution(
        task, schedule.args, schedule.kwargs, scheduled_task=schedule.name
    ).evolve(takes_context=schedule.takes_context or task.takes_context)
    if not backend.schedules.reserve_slot(schedule, slot, execution):
        logger.debug("slot already fired schedule=%s slot=%s", schedule.name, slot.isoformat())
        return None
    execution = backend.dispatch(backend.executions.get(execution.id))
    logger.info(
        "scheduled task fired schedule=%s slot=%s execution_id=%s",
        schedule.name,
        slot.isoformat(),
        execution.id,
    )
    task_enqueued.send(type(backend), task_result=to_task_result(execution, task))
    return execution
