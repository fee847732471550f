"""Task backends: ``ProcessBackend`` (local), ``CloudTasksBackend``, ``CloudRunJobsBackend``."""

from __future__ import annotations

from .base import FirestoreBackend
from .cloud_run_jobs import CloudRunJobsBackend
from .cloud_tasks import CloudTasksBackend
from .process import ProcessBackend

__all__ = ["CloudRunJobsBackend", "CloudTasksBackend", "FirestoreBackend", "ProcessBackend"]
