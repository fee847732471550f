"""The store's answers to a lease holder that lost: control flow between the store and
``execution/``, never raised to a user (so outside ``django_tasks_fs.exceptions``)."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .documents import TaskExecution


class ClaimReason(enum.StrEnum):
    """Why a claim was refused."""

    NOT_FOUND = "not_found"
    FINISHED = "finished"
    LEASE_HELD = "lease_held"
    NOT_DUE = "not_due"
    RUN_ONCE_ATTEMPTED = "run_once_attempted"
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"
    CANCELLED = "cancelled"


class ClaimRefused(Exception):
    """The lease on an execution could not be won."""

    def __init__(self, reason: ClaimReason, execution: TaskExecution | None = None) -> None:
        self.reason = reason
        self.execution = execution
        execution_id = execution.id if execution is not None else "?"
        super().__init__(f"Claim of execution {execution_id!r} refused: {reason.value}")


class LeaseLost(Exception):
    """This worker no longer holds the lease; its writes are refused."""
