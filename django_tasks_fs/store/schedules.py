"""Scheduled tasks (cron) and their per-slot reservations in Firestore.

A slot reservation is a document whose id is (schedule, slot); it is created in one
batch with the execution it enqueues, so a slot enqueues exactly one execution no
matter how many workers, restarts or Cloud Scheduler retries try.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from ..exceptions import ScheduleNotFound
from .cas import compare_and_set
from .client import ServerClock, StoreSettings
from .codec import ensure_fits
from .documents import ScheduledTask, SlotReservation, TaskExecution, is_document_id
from .ops import (
    ASCENDING,
    DOCUMENT_ID,
    Create,
    DocumentExists,
    DocumentMissing,
    DocumentOps,
    Listening,
    OnError,
    Query,
    QueryUpdate,
    Update,
    document_ops,
)

#: Names become Firestore document ids and Cloud Scheduler job ids.
SCHEDULE_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,200}")


def validate_schedule_name(name: str) -> str:
    """Return ``name`` or raise ValueError saying which characters are allowed."""
    if not SCHEDULE_NAME_RE.fullmatch(name) or not is_document_id(name):
        raise ValueError(
            f"Invalid scheduled task name {name!r}: use 1-200 letters, digits, '-' or '_', "
            f"not starting and ending with '__' (it also names the Cloud Scheduler job)."
        )
    return name


def slot_id(name: str, slot: datetime) -> str:
    """The reservation document id for one slot of one schedule (UTC, to the second)."""
    return f"{name}@{slot.astimezone(UTC):%Y%m%dT%H%M%SZ}"


class ScheduleStore:
    """Scheduled tasks of one database and collection prefix."""

    def __init__(self, settings: StoreSettings) -> None:
        self.settings = settings
        self._documents = document_ops(settings)
        self.collection_name = settings.schedules_collection
        self.clock = ServerClock(
            source=lambda: self.documents.server_time(settings.schedules_collection)
        )

    @property
    def documents(self) -> DocumentOps:
        """Where the documents live (Firestore, or this process's memory)."""
        return self._documents

    def _path(self, name: str) -> str:
        return f"{self.collection_name}/{name}"

    def _read(self, name: str) -> tuple[ScheduledTask, datetime]:
        snapshot = self.documents.get(self.collection_name, validate_schedule_name(name))
        if snapshot.data is None:
            raise ScheduleNotFound(f"No scheduled task named {name!r}.")
        schedule = ScheduledTask.from_document(snapshot.id, snapshot.data, snapshot.update_time)
        return schedule, self.clock.observe(snapshot.read_time)

    def get(self, name: str) -> ScheduledTask:
        """Read one scheduled task; raise ScheduleNotFound."""
        return self._read(name)[0]

    def list(self) -> list[ScheduledTask]:
        """All scheduled tasks, by name."""
        query = Query(collection=self.collection_name, order_by=((DOCUMENT_ID, ASCENDING),))
        return [
            ScheduledTask.from_document(s.id, s.data or {}, s.update_time)
            for s in self.documents.query(query)
        ]

    def listen(
        self, on_change: Callable[[tuple[ScheduledTask, ...]], None], on_error: OnError
    ) -> Listening:
        """Follow every scheduled task: ``on_change(all of them, by name)`` at once and
        after each change, on another thread (see ``DocumentOps.listen``)."""

        def changed(update: QueryUpdate) -> None:
            on_change(
                tuple(
                    ScheduledTask.from_document(s.id, s.data or {}, s.update_time)
                    for s in update.documents
                )
            )

        query = Query(collection=self.collection_name, order_by=((DOCUMENT_ID, ASCENDING),))
        return self.documents.listen(query, changed, on_error)

    def create(self, schedule: ScheduledTask) -> ScheduledTask:
        """Write a new scheduled task; raise DocumentExists if the name is taken."""
        name = validate_schedule_name(schedule.name)
        now = self.clock.now()
        schedule = schedule.evolve(created_at=schedule.created_at or now, updated_at=now)
        data = schedule.to_document()
        ensure_fits(self._path(name), data, what="The scheduled task's arguments")
        update_time = self.documents.create(self.collection_name, name, data)
        assert update_time is not None
        return schedule.evolve(update_time=self.clock.observe(update_time))

    def save(self, schedule: ScheduledTask) -> ScheduledTask:
        """Create or replace a scheduled task by name (keeps created_at and the firing record)."""
        try:
            return self.create(schedule)
        except DocumentExists:
            pass

        def replace(current: ScheduledTask) -> ScheduledTask:
            return schedule.evolve(
                created_at=current.created_at,
                last_fired_at=current.last_fired_at,
                last_slot=current.last_slot,
                last_execution_id=current.last_execution_id,
                cloud_scheduler_job=schedule.cloud_scheduler_job or current.cloud_scheduler_job,
            )

        return self.update(schedule.name, replace)

    def update(self, name: str, change: Callable[[ScheduledTask], ScheduledTask]) -> ScheduledTask:
        """Compare-and-set one scheduled task through ``change``."""
        written, _ = compare_and_set(
            read=lambda: self._read(name),
            decide=lambda current, now: (change(current).evolve(updated_at=now), None),
            write=self._write,
            now=self.clock.now,
            subject=f"scheduled task {name!r}",
        )
        return written

    def _write(self, before: ScheduledTask, after: ScheduledTask) -> ScheduledTask:
        data = after.to_document()
        ensure_fits(self._path(after.name), data, what="The scheduled task's arguments")
        try:
            update_time = self.documents.update(
                self.collection_name, after.name, data, last_update_time=before.update_time
            )
        except DocumentMissing:
            raise ScheduleNotFound(f"No scheduled task named {after.name!r}.") from None
        return after.evolve(update_time=self.clock.observe(update_time))

    def delete(self, name: str) -> bool:
        """Delete a scheduled task; return False if there was none."""
        name = validate_schedule_name(name)
        if not self.documents.get(self.collection_name, name).exists:
            return False
        self.documents.delete(self.collection_name, name)
        return True

    def reserve_slot(
        self, schedule: ScheduledTask, slot: datetime, execution: TaskExecution
    ) -> bool:
        """Enqueue ``execution`` for ``slot`` unless that slot was already reserved.

        One batch: create the reservation, create the execution, record the firing on
        the schedule. Returns False (and writes nothing) for a slot already taken;
        raises ScheduleNotFound (and writes nothing) if the schedule was deleted.
        """
        executions = self.settings.executions_collection
        execution_data = execution.to_document()
        ensure_fits(
            f"{executions}/{execution.id}", execution_data, what="The scheduled task's arguments"
        )
        now = self.clock.now()
        reservation = SlotReservation(
            schedule=schedule.name,
            slot=slot,
            execution_id=execution.id,
            created_at=now,
            expires_at=execution.expires_at,
        ).to_document()
        fired = {"last_fired_at": now, "last_slot": slot, "last_execution_id": execution.id}
        try:
            self.documents.commit(
                [
                    Create(
                        self.settings.slots_collection, slot_id(schedule.name, slot), reservation
                    ),
                    Create(executions, execution.id, execution_data),
                    Update(self.collection_name, validate_schedule_name(schedule.name), fired),
                ]
            )
        except DocumentExists:
            return False
        except DocumentMissing:
            raise ScheduleNotFound(f"No scheduled task named {schedule.name!r}.") from None
        return True

    def slot_execution_id(self, name: str, slot: datetime) -> str | None:
        """The execution a reserved slot enqueued, or None if the slot is free."""
        snapshot = self.documents.get(self.settings.slots_collection, slot_id(name, slot))
        if snapshot.data is None:
            return None
        return str(snapshot.data["execution_id"])
