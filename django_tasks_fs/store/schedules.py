"""Scheduled tasks (cron) and their per-slot reservations in Firestore.

A slot reservation is a document whose id is (schedule, slot); it is created in one
batch with the execution it enqueues, so a slot enqueues exactly one execution no
matter how many workers, restarts or Cloud Scheduler retries try.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from google.api_core.exceptions import AlreadyExists, Conflict, FailedPrecondition, NotFound
from google.cloud import firestore

from ..exceptions import ScheduleNotFound
from .calls import Calls
from .client import ServerClock, StoreSettings
from .codec import ensure_fits
from .documents import ScheduledTask, TaskExecution, is_document_id
from .executions import MAX_CAS_ATTEMPTS, ContentionError

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
    """Scheduled tasks of one Firestore database and collection prefix."""

    def __init__(self, settings: StoreSettings) -> None:
        self.settings = settings
        self.calls = Calls(settings)  #: every request, bounded (see store.calls)
        self.clock = ServerClock(
            source=lambda: self.calls.server_time(settings.schedules_collection)
        )

    @property
    def client(self) -> firestore.Client:
        return self.calls.client

    def _ref(self, name: str) -> firestore.DocumentReference:
        return self.client.collection(self.settings.schedules_collection).document(
            validate_schedule_name(name)
        )

    def get(self, name: str) -> ScheduledTask:
        """Read one scheduled task; raise ScheduleNotFound."""
        snapshot = self.calls.get(self._ref(name))
        if not snapshot.exists:
            raise ScheduleNotFound(f"No scheduled task named {name!r}.")
        data = snapshot.to_dict()
        assert data is not None
        return ScheduledTask.from_document(snapshot.id, data, snapshot.update_time)

    def list(self) -> list[ScheduledTask]:
        """All scheduled tasks, by name."""
        collection = self.client.collection(self.settings.schedules_collection)
        return [
            ScheduledTask.from_document(s.id, s.to_dict() or {}, s.update_time)
            for s in self.calls.stream(collection.order_by("__name__"))
        ]

    def create(self, schedule: ScheduledTask) -> ScheduledTask:
        """Write a new scheduled task; raise AlreadyExists (google.api_core) if the name is taken."""
        ref = self._ref(schedule.name)
        now = self.clock.now()
        schedule = schedule.evolve(created_at=schedule.created_at or now, updated_at=now)
        data = schedule.to_document()
        ensure_fits(ref.path, data, what="The scheduled task's arguments")
        update_time = self.calls.create(ref, data)
        return schedule.evolve(update_time=self.clock.observe(update_time))

    def save(self, schedule: ScheduledTask) -> ScheduledTask:
        """Create or replace a scheduled task by name (keeps created_at and the firing record)."""
        try:
            return self.create(schedule)
        except (AlreadyExists, Conflict):
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
        ref = self._ref(name)
        for _ in range(MAX_CAS_ATTEMPTS):
            current = self.get(name)
            after = change(current).evolve(updated_at=self.clock.now())
            data = after.to_document()
            ensure_fits(ref.path, data, what="The scheduled task's arguments")
            assert current.update_time is not None
            try:
                result = self.calls.update(
                    ref, data, option=self.client.write_option(last_update_time=current.update_time)
                )
            except FailedPrecondition:
                continue
            except NotFound:
                raise ScheduleNotFound(f"No scheduled task named {name!r}.") from None
            return after.evolve(update_time=self.clock.observe(result.update_time))
        raise ContentionError(f"Gave up on scheduled task {name!r} after repeated conflicts.")

    def delete(self, name: str) -> bool:
        """Delete a scheduled task; return False if there was none."""
        ref = self._ref(name)
        if not self.calls.get(ref).exists:
            return False
        self.calls.delete(ref)
        return True

    def reserve_slot(
        self, schedule: ScheduledTask, slot: datetime, execution: TaskExecution
    ) -> bool:
        """Enqueue ``execution`` for ``slot`` unless that slot was already reserved.

        One batch: create the reservation, create the execution, record the firing on
        the schedule. Returns False (and writes nothing) for a slot already taken;
        raises ScheduleNotFound (and writes nothing) if the schedule was deleted.
        """
        slots = self.client.collection(self.settings.slots_collection)
        executions = self.client.collection(self.settings.executions_collection)
        execution_ref = executions.document(execution.id)
        execution_data = execution.to_document()
        ensure_fits(execution_ref.path, execution_data, what="The scheduled task's arguments")
        now = self.clock.now()
        batch = self.client.batch()
        batch.create(
            slots.document(slot_id(schedule.name, slot)),
            {
                "schedule": schedule.name,
                "slot": slot,
                "execution_id": execution.id,
                "created_at": now,
                "expires_at": execution.expires_at,
            },
        )
        batch.create(execution_ref, execution_data)
        batch.update(
            self._ref(schedule.name),
            {"last_fired_at": now, "last_slot": slot, "last_execution_id": execution.id},
        )
        try:
            self.calls.commit(batch)
        except (AlreadyExists, Conflict):
            return False
        except NotFound:
            raise ScheduleNotFound(f"No scheduled task named {schedule.name!r}.") from None
        return True

    def slot_execution_id(self, name: str, slot: datetime) -> str | None:
        """The execution a reserved slot enqueued, or None if the slot is free."""
        slots = self.client.collection(self.settings.slots_collection)
        snapshot = self.calls.get(slots.document(slot_id(name, slot)))
        if not snapshot.exists:
            return None
        return str((snapshot.to_dict() or {})["execution_id"])
