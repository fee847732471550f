"""Task backends: ``ProcessBackend`` (local), ``CloudTasksBackend``, ``CloudRunJobsBackend``."""

from __future__ import annotations

from .base import FirestoreBackend
from .process import ProcessBackend

__all__ = ["FirestoreBackend", "ProcessBackend"]
