"""What an attempt reports: its Outcome, and a failure described for the record and the log.

Values only (no I/O): the attempt (attempt.py) produces them, the recorders
(recorders.py) return them, and the callers (the execute/ endpoint, execute_task, the
worker's children) turn them into an HTTP status, an exit code or a log line.
"""

from __future__ import annotations

import enum
import traceback
from dataclasses import dataclass

from ..store import ErrorEntry, TaskExecution
from ..store.errors import ClaimReason
from ..store.transitions import class_path


class Outcome(enum.StrEnum):
    """How an attempt ended, as the platform needs to know it."""

    SUCCEEDED = "succeeded"  #: SUCCESSFUL recorded
    FAILED = "failed"  #: FAILED recorded: no further attempt
    RETRY = "retry"  #: failure recorded, READY again: another attempt should come
    RELEASED = "released"  #: handed back unfinished (shutdown): run it again later
    REFUSED = "refused"  #: the lease was not won; ``reason`` says why
    LEASE_LOST = "lease_lost"  #: another attempt took over; nothing written

    @property
    def wants_retry(self) -> bool:
        """Should the platform deliver this execution again?"""
        return self in {Outcome.RETRY, Outcome.RELEASED, Outcome.LEASE_LOST}


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptResult:
    outcome: Outcome
    execution: TaskExecution | None = None
    reason: ClaimReason | None = None
    error: str = ""  #: a failed attempt's exception, as Python prints it: "ValueError: boom"
    duration: float | None = None  #: seconds the task ran (None: it did not run)

    @property
    def wants_retry(self) -> bool:
        if self.outcome == Outcome.REFUSED:
            # A live lease elsewhere or not due yet: deliver again later; the rest are final.
            return self.reason in {ClaimReason.LEASE_HELD, ClaimReason.NOT_DUE}
        return self.outcome.wants_retry


#: Refusals that closed the execution as FAILED (the claim wrote that state).
CLOSING_REASONS = frozenset(
    {ClaimReason.RUN_ONCE_ATTEMPTED, ClaimReason.ATTEMPTS_EXHAUSTED, ClaimReason.CANCELLED}
)


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed attempt's error: the entry recorded, and the line logged."""

    entry: ErrorEntry
    summary: str  #: "ValueError: boom", the last line of the traceback


def describe(exc_type: type[BaseException], message: str) -> str:
    """An exception as the last line of its traceback: ``ValueError: boom``."""
    module = exc_type.__module__
    name = exc_type.__qualname__ if module == "builtins" else f"{module}.{exc_type.__qualname__}"
    return f"{name}: {message}" if message else name


def failure_of(exc: BaseException) -> Failure:
    entry = ErrorEntry(
        exception_class_path=class_path(type(exc)),
        traceback="".join(traceback.format_exception(exc)),
    )
    try:
        message = str(exc)
    except Exception:  # a broken __str__ must not hide the failure itself
        message = "<message unavailable>"
    return Failure(entry, describe(type(exc), message))


def synthetic_failure(exc_type: type[BaseException], message: str) -> Failure:
    entry = ErrorEntry(
        exception_class_path=class_path(exc_type), traceback=f"{exc_type.__name__}: {message}\n"
    )
    return Failure(entry, describe(exc_type, message))


def error_type(result: AttemptResult) -> str | None:
    """The exception class of a failed attempt, for its span."""
    if result.outcome not in {Outcome.FAILED, Outcome.RETRY} or result.execution is None:
        return None
    errors = result.execution.errors
    return errors[-1].exception_class_path if errors else None
