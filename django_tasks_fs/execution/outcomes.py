"""How an attempt ended, as the platform (and the worker) needs to know it."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..store import TaskExecution
from ..store.errors import ClaimReason


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
