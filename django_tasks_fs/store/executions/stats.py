"""Aggregate figures over executions, each at a cost that does not grow with the collection.

For the admin dashboard (and monitoring): capped counts (a Firestore count aggregation
with a limit: billed 1 read per 1,000 index entries counted, so at most
``ceil(limit / 1000)`` reads), and queries with a limit. Every ``queue_name`` argument
is optional: None covers the backend's every queue. The query shapes are declared in
store.indexes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.tasks import TaskResultStatus

from ..documents import DispatchState, TaskExecution
from ..ops import ASCENDING, DESCENDING, Filter, Query
from .queries import ExecutionFilter, ExecutionQueries

#: What a capped count stops at unless told otherwise (billed 1 read).
DEFAULT_COUNT_LIMIT = 1000
FINISHED = (TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED)
#: The fields a duration sample reads (not the arguments nor the return value).
SAMPLE_FIELDS = ("task_path", "status", "started_at", "last_attempted_at", "finished_at")


@dataclass(frozen=True, slots=True, kw_only=True)
class FinishedRun:
    """One finished execution of a duration sample."""

    task_path: str
    status: TaskResultStatus
    finished_at: datetime
    seconds: float  #: from the start of its last attempt to its end


class ExecutionStats(ExecutionQueries):
    """Capped counts and bounded samples over executions."""

    def _scope(self, backend: str, queue_name: str | None) -> tuple[Filter, ...]:
        found = [Filter("backend", "==", backend)]
        if queue_name is not None:
            found.append(Filter("queue_name", "==", queue_name))
        return tuple(found)

    def status_count(
        self,
        status: TaskResultStatus,
        *,
        backend: str,
        queue_name: str | None = None,
        limit: int | None = DEFAULT_COUNT_LIMIT,
    ) -> int:
        """Executions in ``status`` (READY ones due or not), at most ``limit`` (None: all,
        at a cost that grows with the collection)."""
        chosen = ExecutionFilter(status=status, backend=backend, queue_name=queue_name)
        return self.count(chosen, limit=limit)

    def oldest_ready(
        self, *, backend: str, queue_name: str | None = None, now: datetime | None = None
    ) -> TaskExecution | None:
        """The READY execution due the longest (smallest ``run_after`` up to ``now``)."""
        query = Query(
            collection=self.collection_name,
            filters=(
                Filter("status", "==", str(TaskResultStatus.READY)),
                *self._scope(backend, queue_name),
                Filter("run_after", "<=", now or self.clock.now()),
            ),
            order_by=(("run_after", ASCENDING),),
            limit=1,
        )
        found = self._run(query)
        return found[0] if found else None

    def finished_since(
        self,
        *,
        backend: str,
        status: TaskResultStatus,
        since: datetime,
        queue_name: str | None = None,
        limit: int | None = DEFAULT_COUNT_LIMIT,
    ) -> int:
        """Executions that finished with ``status`` at or after ``since``, at most ``limit``."""
        query = Query(
            collection=self.collection_name,
            filters=(
                Filter("status", "==", str(status)),
                *self._scope(backend, queue_name),
                Filter("finished_at", ">=", since),
            ),
            # The order of recent_durations: one index serves both.
            order_by=(("finished_at", DESCENDING),),
            limit=limit,
        )
        return self.documents.count(query)

    def recent_durations(
        self, *, backend: str, queue_name: str | None = None, limit: int = 100
    ) -> list[FinishedRun]:
        """The last ``limit`` finished executions (SUCCESSFUL or FAILED), newest first,
        with how long their last attempt ran; those that never started are left out."""
        query = Query(
            collection=self.collection_name,
            filters=(
                Filter("status", "in", [str(s) for s in FINISHED]),
                *self._scope(backend, queue_name),
            ),
            order_by=(("finished_at", DESCENDING),),
            limit=limit,
            select=SAMPLE_FIELDS,
        )
        runs = []
        for snapshot in self.documents.query(query):
            data = snapshot.data or {}
            start = data.get("last_attempted_at") or data.get("started_at")
            end = data.get("finished_at")
            if start is None or end is None:
                continue
            runs.append(
                FinishedRun(
                    task_path=data["task_path"],
                    status=TaskResultStatus(data["status"]),
                    finished_at=end,
                    seconds=max((end - start).total_seconds(), 0.0),
                )
            )
        return runs

    def expired_leases_count(
        self, *, backend: str, now: datetime | None = None, limit: int | None = DEFAULT_COUNT_LIMIT
    ) -> int:
        """RUNNING executions whose lease expired by ``now`` (``expired_leases``' count)."""
        query = Query(
            collection=self.collection_name,
            filters=(
                Filter("status", "==", str(TaskResultStatus.RUNNING)),
                Filter("backend", "==", backend),
                Filter("lease_expires_at", "<=", now or self.clock.now()),
            ),
            order_by=(("lease_expires_at", ASCENDING),),
            limit=limit,
        )
        return self.documents.count(query)

    def stale_pending_count(
        self, *, backend: str, older_than: datetime, limit: int | None = DEFAULT_COUNT_LIMIT
    ) -> int:
        """Executions still PENDING dispatch enqueued before ``older_than``
        (``pending_dispatch``' count)."""
        query = Query(
            collection=self.collection_name,
            filters=(
                Filter("dispatch_state", "==", str(DispatchState.PENDING)),
                Filter("backend", "==", backend),
                Filter("enqueued_at", "<=", older_than),
            ),
            order_by=(("enqueued_at", ASCENDING),),
            limit=limit,
        )
        return self.documents.count(query)
