"""Task execution documents: the primitives (base), the lifecycle verbs, the queries."""

from __future__ import annotations

from ..cas import MAX_CAS_ATTEMPTS, ContentionError
from .base import Step, new_execution_id, new_lease_owner
from .lifecycle import ExecutionLifecycle
from .queries import MAX_IN_VALUES, ExecutionFilter, ExecutionQueries, Page


class ExecutionStore(ExecutionLifecycle, ExecutionQueries):
    """Task executions of one database and collection prefix."""


__all__ = [
    "MAX_CAS_ATTEMPTS",
    "MAX_IN_VALUES",
    "ContentionError",
    "ExecutionFilter",
    "ExecutionStore",
    "Page",
    "Step",
    "new_execution_id",
    "new_lease_owner",
]
