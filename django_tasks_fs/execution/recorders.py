"""Where an attempt's final write goes: straight to Firestore, or batched.

The warm workers of ``run_tasks`` run many short attempts back to back; writing their
outcomes in one commit each few milliseconds costs a fraction of one commit per
attempt. Every write is still a compare-and-set by the lease holder; a conflicting
batch falls back to one compare-and-set per attempt.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from ..store import ExecutionStore, Lease, TaskExecution
from ..store.errors import LeaseLost
from .outcome import AttemptResult

if TYPE_CHECKING:
    from ..store.executions import Step

#: Turns the written execution (or the LeaseLost refusal) into the attempt's result.
Then = Callable[[TaskExecution | LeaseLost], AttemptResult]


class Recorder(Protocol):
    def write(self, lease: Lease, step: Step, then: Then) -> AttemptResult | None:
        """Apply ``step`` as the lease holder; return the result, or None if deferred."""
        ...


class ImmediateRecorder:
    """One compare-and-set per attempt, now."""

    def __init__(self, store: ExecutionStore) -> None:
        self.store = store

    def write(self, lease: Lease, step: Step, then: Then) -> AttemptResult:
        try:
            written: TaskExecution | LeaseLost = self.store.write_as_owner(lease, step)
        except LeaseLost as exc:
            written = exc
        return then(written)


class BufferedRecorder:
    """Collect final writes and commit them together, at most ``delay`` seconds late."""

    def __init__(self, store: ExecutionStore, *, delay: float = 0.02) -> None:
        self.store = store
        self.delay = delay
        self.results: list[AttemptResult] = []
        #: Each write with the context it was made in: its ``then`` runs in it (the
        #: attempt's log attributes, django_tasks_fs.logging), on whichever thread flushes.
        self._pending: list[tuple[Lease, Step, Then, contextvars.Context]] = []
        self._oldest = 0.0
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="result-writer", daemon=True)
        self._thread.start()

    def write(self, lease: Lease, step: Step, then: Then) -> None:
        with self._lock:
            if not self._pending:
                self._oldest = time.monotonic()
            self._pending.append((lease, step, then, contextvars.copy_context()))

    def flush(self) -> None:
        """Commit everything buffered so far."""
        with self._flushing:
            with self._lock:
                pending, self._pending = self._pending, []
            if not pending:
                return
            written = self.store.write_many([(lease, step) for lease, step, _, _ in pending])
            for (_, _, then, context), outcome in zip(pending, written, strict=True):
                self.results.append(context.run(then, outcome))

    def _run(self) -> None:
        # While the main thread runs a long task, earlier results must not wait for it.
        while not self._closed.wait(self.delay):
            with self._lock:
                due = bool(self._pending) and time.monotonic() - self._oldest >= self.delay
            if due:
                self.flush()

    def close(self) -> list[AttemptResult]:
        """Flush, stop the writer thread and return every result recorded."""
        self._closed.set()
        self._thread.join()
        self.flush()
        return self.results
