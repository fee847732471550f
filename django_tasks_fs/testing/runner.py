"""Run enqueued tasks synchronously, in the test's own process, through the real engine."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.tasks import TaskResult

from ..backends.base import FirestoreBackend
from ..execution.attempt import Attempt
from ..registry import backend_holding, firestore_backends, get_backend
from ..results import to_task_result

#: A run_all() that keeps finding work after this many attempts is probably looping.
MAX_ATTEMPTS_PER_RUN = 10_000
#: Retries due within this long are run at once by run_all() (a year: any backoff).
RETRY_HORIZON = timedelta(days=366)


class TaskRunner:
    """``runner.run_all()`` runs every due execution (and the retries it causes) now."""

    worker_id = "test-runner"

    def _backends(self, alias: str | None) -> list[FirestoreBackend]:
        return [get_backend(alias)] if alias is not None else list(firestore_backends().values())

    def run(self, result: TaskResult[Any, Any]) -> TaskResult[Any, Any]:
        """Run one attempt of ``result``'s execution now; return the refreshed result."""
        backend = get_backend(result.backend)
        Attempt(backend, result.id, worker_id=self.worker_id).run()
        result.refresh()
        return result

    def run_all(
        self, *, backend: str | None = None, include_retries: bool = True
    ) -> list[TaskResult[Any, Any]]:
        """Run due executions until none is left; return their final results, oldest first.

        With ``include_retries`` a failed attempt's retry runs at once (its backoff is
        skipped), so a task that fails for good ends FAILED within this call.
        """
        ran: dict[str, None] = {}
        for _ in range(MAX_ATTEMPTS_PER_RUN):
            due = [
                (b, e)
                for b in self._backends(backend)
                for e in b.executions.ready(backend=b.alias, limit=50)
            ]
            if include_retries and not due:
                due = self._waiting_retries(backend)
            if not due:
                return [to_task_result(backend_holding(i).executions.get(i)) for i in ran]
            for owner, execution in due:
                ran[execution.id] = None
                Attempt(owner, execution.id, worker_id=self.worker_id, known=execution).run()
        raise RuntimeError(
            f"run_all() gave up after {MAX_ATTEMPTS_PER_RUN} attempts: do tasks enqueue forever?"
        )

    def _waiting_retries(self, alias: str | None) -> list[tuple[FirestoreBackend, Any]]:
        """READY executions that only wait for their retry backoff: make them due now."""
        waiting = []
        for backend in self._backends(alias):
            store = backend.executions
            far = store.clock.now() + RETRY_HORIZON
            for execution in store.ready(backend=backend.alias, limit=50, now=far):
                if execution.attempts > 0:  # a retry, not a task deferred on purpose
                    due = store._compare_and_set(
                        execution.id, lambda current, now: current.evolve(run_after=now)
                    )
                    waiting.append((backend, due))
        return waiting
