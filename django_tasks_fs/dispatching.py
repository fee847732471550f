"""The sweeper: hand executions to Google Cloud when the first hand-over didn't stick.

* PENDING: ``enqueue()`` writes the execution before it calls Google Cloud, so nothing
  is lost between the two, and writes nothing after a successful send: the first
  delivery's claim marks it DISPATCHED. Whatever stays PENDING for ``grace`` (a crash or
  an API error before the send; or sent, but not delivered yet: a later ``run_after``, a
  backlog) is sent again, and recorded DISPATCHED then: a repeat is harmless (Cloud
  Tasks de-duplicates by task name, a Cloud Run resend finds the job execution it
  started), and each execution is sent again at most once this way. One whose queue or
  job does not exist is closed FAILED with that error, not sent again.
* Task groups whose completion check was lost (the last member's worker died right
  after its finishing write): completed here, their callbacks enqueued once.
* Abandoned: dispatched, not finished, and the platform has (probably) stopped
  delivering: a worker died holding the lease while every platform retry met that live
  lease, or the deliveries ran out. These are marked PENDING with a new dispatch number
  and sent again (``store.transitions.needs_redispatch`` has the rule).

Run it every minute or so: the ``sweep/`` endpoint from Cloud Scheduler, or
``manage.py sweep_tasks``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from .exceptions import MissingCloudResource
from .group_completion import sweep_groups
from .logging import task_extra
from .store import DispatchState, TaskExecution

if TYPE_CHECKING:  # annotations only: the admin imports this module's constants
    from .backends.google_cloud import GoogleCloudBackend

logger = logging.getLogger(__name__)

#: An execution still PENDING after this long is assumed stuck (not merely in flight),
#: and a RUNNING one whose lease expired this long ago is assumed abandoned.
DEFAULT_GRACE = timedelta(seconds=60)
#: A dispatched execution still READY (or re-dispatched and still abandoned) after this
#: long is sent again: longer than the platforms' usual retry backoff.
DEFAULT_STALE = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class SweepReport:
    """What one sweep of one backend did."""

    dispatched: int  #: PENDING executions now accepted by the platform
    redispatched: int  #: abandoned executions handed to the platform again
    groups_completed: int = 0  #: task groups completed (their callbacks enqueued)


def sweep(
    backend: GoogleCloudBackend,
    *,
    grace: timedelta = DEFAULT_GRACE,
    stale: timedelta = DEFAULT_STALE,
    limit: int = 500,
) -> SweepReport:
    """Dispatch ``backend``'s stuck PENDING executions, then re-dispatch abandoned ones."""
    store = backend.executions
    now = store.clock.now()
    abandoned = [
        *store.expired_leases(backend=backend.alias, now=now - grace, limit=limit),
        *store.ready(backend=backend.alias, now=now - stale, limit=limit),
    ]
    marked = [
        store.mark_for_redispatch(e.id, grace=grace, stale=stale)
        for e in abandoned
        if e.dispatch_state == DispatchState.DISPATCHED
    ]
    redispatched = sum(1 for e in marked if e is not None and _send(backend, e, resend=False))
    pending = store.pending_dispatch(backend=backend.alias, older_than=now - grace, limit=limit)
    for finished in (e for e in pending if e.is_finished):
        # Finished while still PENDING (cancelled before its first delivery): settle it,
        # or it would come back in every sweep (and crowd out the ones that need a send).
        store.set_dispatch(finished.id, DispatchState.DISPATCHED, known=finished)
    dispatched = sum(1 for e in pending if not e.is_finished and _send(backend, e, resend=True))
    # After the sends: a group completed here has its callbacks dispatched at once.
    groups = sweep_groups(backend, grace=grace, limit=limit)
    if pending or abandoned:
        logger.info(
            "sweep backend=%s pending=%d dispatched=%d abandoned=%d redispatched=%d",
            backend.alias,
            len(pending),
            dispatched,
            len(abandoned),
            redispatched,
            extra=task_extra(backend=backend.alias),
        )
    return SweepReport(dispatched=dispatched, redispatched=redispatched, groups_completed=groups)


def _send(backend: GoogleCloudBackend, execution: TaskExecution, *, resend: bool) -> bool:
    """Send and record DISPATCHED (a sweep's sends are rare: each is confirmed at once)."""
    try:
        after = backend.dispatch(execution, resend=resend, confirm=True)
    except MissingCloudResource as exc:
        # closed FAILED: not sent again
        logger.warning("not dispatched: %s", exc, extra=task_extra(execution, outcome="failed"))
        return False
    return after.dispatch_state == DispatchState.DISPATCHED
