"""Local cron for ``run_tasks``: fire every due slot of every enabled schedule.

Exactly once per slot across workers and restarts comes from the slot reservations
(store.schedules); this module only decides which slots are due:

* slots after the schedule's ``last_slot`` (or its creation) and after the worker
  started, minus a restart window (so a slot that fell due while the worker restarted
  still fires);
* with ``catch_up``, also the newest slot missed while no worker ran.

The worker either polls (``tick()`` reads the schedules each time) or follows the
schedules with a listener and passes them in (``tick(now, schedules)``), ticking
again at ``next_due()``: no read between slots.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.tasks.exceptions import InvalidTask

from ..exceptions import TaskNotImportable
from ..results import FirestoreTaskResult
from ..store import ScheduledTask
from .cron import next_slot, slots_between
from .firing import fire_slot

if TYPE_CHECKING:
    from ..backends.base import FirestoreBackend

logger = logging.getLogger(__name__)

#: A slot that fell due this long before the worker started still fires.
RESTART_WINDOW = timedelta(seconds=60)


class LocalCron:
    """Fires the schedules of the given backends; call ``tick()`` on every poll."""

    def __init__(
        self, backends: Sequence[FirestoreBackend], *, started: datetime, catch_up: bool
    ) -> None:
        self.backends = [b for b in backends if b.uses_local_cron]
        self.started = started
        self.catch_up = catch_up
        self._cursors: dict[tuple[str, str], datetime] = {}

    def _first_cursor(self, schedule: ScheduledTask) -> datetime:
        """Slots after this instant are due when this worker first sees the schedule."""
        # Nothing before the schedule existed, nor before the last slot it fired.
        since = schedule.last_slot or schedule.created_at or self.started
        if self.catch_up:
            return since
        return max(since, self.started - RESTART_WINDOW)

    def tick(
        self, now: datetime, schedules: Mapping[str, Sequence[ScheduledTask]] | None = None
    ) -> list[FirestoreTaskResult]:
        """Fire every due slot; return the results of the executions enqueued.

        ``schedules``: each backend's scheduled tasks by alias, as a listener last saw
        them (a backend missing from it, or None: read them now).
        """
        fired: list[FirestoreTaskResult] = []
        for backend in self.backends:
            for schedule in self._enabled(backend, schedules):
                fired.extend(self._fire_due(backend, schedule, now))
        return fired

    def next_due(self, schedules: Mapping[str, Sequence[ScheduledTask]]) -> datetime | None:
        """When the next slot of the given schedules falls due (None: never)."""
        due: list[datetime] = []
        for backend in self.backends:
            for schedule in self._enabled(backend, schedules):
                key = (backend.alias, schedule.name)
                cursor = self._cursors.get(key) or self._first_cursor(schedule)
                try:
                    due.append(next_slot(schedule.schedule, schedule.time_zone, cursor))
                except ValueError:
                    continue  # logged by the tick that skips it
        return min(due, default=None)

    def _enabled(
        self,
        backend: FirestoreBackend,
        schedules: Mapping[str, Sequence[ScheduledTask]] | None,
    ) -> list[ScheduledTask]:
        known = schedules.get(backend.alias) if schedules is not None else None
        listed = backend.schedules.list() if known is None else known
        return [s for s in listed if s.enabled and s.backend == backend.alias]

    def _fire_due(
        self, backend: FirestoreBackend, schedule: ScheduledTask, now: datetime
    ) -> list[FirestoreTaskResult]:
        key = (backend.alias, schedule.name)
        first_sight = key not in self._cursors
        cursor = self._cursors.get(key) or self._first_cursor(schedule)
        try:
            slots = slots_between(schedule.schedule, schedule.time_zone, cursor, now)
        except ValueError:
            logger.exception("invalid schedule skipped schedule=%s", schedule.name)
            self._cursors[key] = now
            return []
        if first_sight and self.catch_up and len(slots) > 1:
            # Catch up with the newest missed slot only, not a flood after a long outage.
            missed = [s for s in slots if s < self.started - RESTART_WINDOW]
            recent = [s for s in slots if s >= self.started - RESTART_WINDOW]
            slots = missed[-1:] + recent
        self._cursors[key] = now
        fired = []
        for slot in slots:
            try:
                result = fire_slot(backend, schedule, slot)
            except (TaskNotImportable, InvalidTask):
                logger.exception("scheduled task cannot be enqueued schedule=%s", schedule.name)
                break
            if result is not None:
                fired.append(result)
        return fired
