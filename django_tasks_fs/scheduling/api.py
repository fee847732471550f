"""``schedule_task`` and ``delete_scheduled_task``: cron schedules kept in Firestore."""

from __future__ import annotations

from typing import Any

from ..exceptions import ScheduleNotFound
from ..registry import firestore_backends, get_backend
from ..store import ScheduledTask, validate_schedule_name
from ..store.codec import encode_json
from .cron import validate_cron, validate_time_zone


def schedule_task(
    task: Any,
    schedule: str,
    *,
    name: str = "",
    description: str = "",
    time_zone: str = "UTC",
    enabled: bool = True,
    backend: str = "",
    queue_name: str = "",
    priority: int | None = None,
    takes_context: bool | None = None,
    args: list[Any] | None = None,
    kwargs: dict[str, Any] | None = None,
) -> ScheduledTask:
    """Create or update the schedule ``name`` (default: the task's name) and sync it.

    ``schedule`` is a 5-field cron expression evaluated in ``time_zone``. Calling it
    again with the same name updates the schedule, so it is safe at every deploy.
    Raises ValueError for an invalid name, cron expression or time zone,
    NotJSONSerializable for arguments that are not JSON, and UnknownBackend when
    ``backend`` is not a django_tasks_fs backend.
    """
    name = validate_schedule_name(name or task.name)
    validate_cron(schedule)
    validate_time_zone(time_zone)
    args = list(args or [])
    kwargs = dict(kwargs or {})
    encode_json(args, where="args")
    encode_json(kwargs, where="kwargs")
    target = get_backend(backend or task.backend)
    item = ScheduledTask(
        name=name,
        task_path=task.module_path,
        schedule=schedule,
        time_zone=time_zone,
        args=args,
        kwargs=kwargs,
        backend=target.alias,
        queue_name=queue_name or task.queue_name,
        priority=task.priority if priority is None else priority,
        takes_context=task.takes_context if takes_context is None else takes_context,
        enabled=enabled,
        description=description,
    )
    # Validate the task as the backend would run it (queue, priority, ...).
    target.validate_task(
        task.using(queue_name=item.queue_name, priority=item.priority, backend=target.alias)
    )
    saved = target.schedules.save(item)
    return target.sync_schedule(saved)


def delete_scheduled_task(name: str, *, backend: str = "") -> bool:
    """Delete the schedule ``name`` (and its Cloud Scheduler job); False if there was none."""
    candidates = [get_backend(backend)] if backend else firestore_backends().values()
    for target in candidates:
        try:
            item = target.schedules.get(name)
        except ScheduleNotFound:
            continue
        owner = firestore_backends().get(item.backend, target)
        owner.delete_schedule(item)
        target.schedules.delete(name)
        return True
    return False


def rename_scheduled_task(old_name: str, new_name: str, *, backend: str = "") -> ScheduledTask:
    """Rename a schedule; on Google Cloud the old Cloud Scheduler job is deleted.

    Raises ScheduleNotFound for an unknown ``old_name`` and ValueError for an invalid
    or taken ``new_name``.
    """
    validate_schedule_name(new_name)
    for target in [get_backend(backend)] if backend else firestore_backends().values():
        try:
            item = target.schedules.get(old_name)
        except ScheduleNotFound:
            continue
        owner = get_backend(item.backend)
        try:
            owner.schedules.get(new_name)
        except ScheduleNotFound:
            pass
        else:
            raise ValueError(f"A scheduled task named {new_name!r} already exists.")
        # The copy keeps the old job's resource name: syncing it deletes that job.
        created = owner.schedules.create(item.evolve(name=new_name, created_at=None))
        target.schedules.delete(old_name)
        return owner.sync_schedule(created)
    raise ScheduleNotFound(f"No scheduled task named {old_name!r}.")
