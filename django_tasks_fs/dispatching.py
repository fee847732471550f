"""The sweeper: dispatch executions whose dispatch never happened (a crash, an API error).

``enqueue()`` writes the execution as PENDING before it calls Google Cloud, so an
execution is never lost between the two: whatever stays PENDING for a while is sent
again here (Cloud Tasks de-duplicates by task name, so a repeat is harmless).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from .backends.google_cloud import GoogleCloudBackend
from .store import DispatchState

logger = logging.getLogger(__name__)

#: An execution still PENDING after this long is assumed stuck (not merely in flight).
DEFAULT_GRACE = timedelta(seconds=60)


def sweep(
    backend: GoogleCloudBackend, *, grace: timedelta = DEFAULT_GRACE, limit: int = 500
) -> int:
    """Dispatch again every execution of ``backend`` PENDING for longer than ``grace``."""
    store = backend.executions
    stuck = store.pending_dispatch(
        backend=backend.alias, older_than=store.clock.now() - grace, limit=limit
    )
    dispatched = 0
    for execution in stuck:
        if execution.is_finished:
            continue
        after = backend.dispatch(execution)
        if after.dispatch_state == DispatchState.DISPATCHED:
            dispatched += 1
    if stuck:
        logger.info(
            "sweep backend=%s pending=%d dispatched=%d", backend.alias, len(stuck), dispatched
        )
    return dispatched
