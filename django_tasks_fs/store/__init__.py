"""The only code that talks to Firestore.

It speaks in task verbs (create, claim, renew, succeed, fail, cancel) and returns the
dataclasses in ``documents``; callers never see a Firestore snapshot. Underneath, every
read and write is a document operation (``store.ops``) on Firestore or, with the
backend option ``"store": "memory"``, on this process's memory.
"""

from __future__ import annotations

from .client import StoreSettings, get_client
from .documents import DispatchState, ErrorEntry, Lease, ScheduledTask, TaskExecution
from .executions import ExecutionFilter, ExecutionStore, Page, new_execution_id
from .schedules import ScheduleStore, slot_id, validate_schedule_name
from .transitions import CancelOutcome

__all__ = [
    "CancelOutcome",
    "DispatchState",
    "ErrorEntry",
    "ExecutionFilter",
    "ExecutionStore",
    "Lease",
    "Page",
    "ScheduleStore",
    "ScheduledTask",
    "StoreSettings",
    "TaskExecution",
    "get_client",
    "new_execution_id",
    "slot_id",
    "validate_schedule_name",
]
