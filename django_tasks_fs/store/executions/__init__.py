"""Task execution documents: the primitives (base), the lifecycle verbs, the queries,
the aggregate figures (stats)."""

from __future__ import annotations

from ..cas import MAX_CAS_ATTEMPTS, ContentionError
from .base import Step, new_execution_id, new_lease_owner
from .lifecycle import ExecutionLifecycle
from .queries import MAX_IN_VALUES, ExecutionFilter, Page
from .stats import ExecutionStats, FinishedRun


class ExecutionStore(ExecutionLifecycle, ExecutionStats):
    """Task executions of one database and collection prefix."""


__all__ = [
    "MAX_CAS_ATTEMPTS",
    "MAX_IN_VALUES",
    "ContentionError",
    "ExecutionFilter",
    "ExecutionStore",
    "FinishedRun",
    "Page",
    "Step",
    "new_execution_id",
    "new_lease_owner",
]
