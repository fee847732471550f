"""Task backends: ``ProcessBackend`` (local), ``CloudTasksBackend``, ``CloudRunJobsBackend``.

The Google Cloud backends are imported on first use (PEP 562): a local worker, which
names ``django_tasks_fs.backends.ProcessBackend``, does not pay for their modules at
start-up (docs/benchmarks.md, worker start-up).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .base import FirestoreBackend
from .process import ProcessBackend

if TYPE_CHECKING:
    from .cloud_run_jobs import CloudRunJobsBackend
    from .cloud_tasks import CloudTasksBackend

__all__ = ["CloudRunJobsBackend", "CloudTasksBackend", "FirestoreBackend", "ProcessBackend"]

_LAZY = {"CloudRunJobsBackend": ".cloud_run_jobs", "CloudTasksBackend": ".cloud_tasks"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
