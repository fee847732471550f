"""ProcessBackend: run tasks on this machine with ``manage.py run_tasks``, state in Firestore.

``mode`` makes it behave like the Google Cloud backend you will deploy to:
``cloud_tasks`` (deferral, warm worker processes) or ``cloud_run_jobs`` (one process
per attempt, forceful cancellation by SIGTERM, no deferral).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

from ..options import Kind
from .base import FirestoreBackend

CLOUD_TASKS_TIMEOUTS = (timedelta(seconds=15), timedelta(minutes=30))
CLOUD_RUN_JOBS_TIMEOUTS = (timedelta(seconds=1), timedelta(hours=168))


class ProcessBackend(FirestoreBackend):
    """Local execution by the ``run_tasks`` worker; see the module docstring."""

    supports_priority = True
    option_kind: ClassVar[Kind] = Kind.LOCAL

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        # The capabilities follow the mode, as the platform it stands in for would.
        jobs = self.config.mode == "cloud_run_jobs"
        self.supports_defer = not jobs
        self.supports_force_cancel = jobs  # type: ignore[misc]
        self.timeout_range = CLOUD_RUN_JOBS_TIMEOUTS if jobs else CLOUD_TASKS_TIMEOUTS  # type: ignore[misc]
        self.messaging_system = "gcp_cloud_run_jobs" if jobs else "gcp_cloud_tasks"

    @property
    def uses_local_cron(self) -> bool:
        return True
