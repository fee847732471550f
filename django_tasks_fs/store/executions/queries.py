"""Execution queries: the worker's polls (ready, expired leases), the sweeper's
(pending dispatch), the admin's listings and counts, and retention (finished before).

Every query shape here that needs a composite index is declared in store.indexes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.tasks import TaskResultStatus

from ...exceptions import ExecutionNotFound
from ..documents import DispatchState, TaskExecution
from ..ops import ASCENDING, DESCENDING, Delete, Filter, Listening, OnError, Query, QueryUpdate
from .base import MAX_BATCH_WRITES, ExecutionDocuments

#: Firestore's limit for values in an ``in`` filter.
MAX_IN_VALUES = 30


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionFilter:
    """Equality filters for listing executions; None means any."""

    status: TaskResultStatus | None = None
    backend: str | None = None
    queue_name: str | None = None
    task_path: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Page:
    """One page of a listing, newest first, and the cursor for the next one."""

    items: list[TaskExecution]
    next_cursor: str | None  #: the id of the last item, or None on the last page


class ExecutionQueries(ExecutionDocuments):
    """The queries over executions."""

    def _run(self, query: Query) -> list[TaskExecution]:
        return [self._from_snapshot(s) for s in self.documents.query(query)]

    def _ready_query(
        self, backend: str, queues: Sequence[str] | None, limit: int, until: datetime
    ) -> Query:
        filters = [
            Filter("status", "==", str(TaskResultStatus.READY)),
            Filter("backend", "==", backend),
        ]
        if queues:
            queue_list = sorted(set(queues))
            if len(queue_list) > MAX_IN_VALUES:
                raise ValueError(f"At most {MAX_IN_VALUES} queues can be polled at once.")
            filters.append(Filter("queue_name", "in", queue_list))
        filters.append(Filter("run_after", "<=", until))
        return Query(
            collection=self.collection_name,
            filters=tuple(filters),
            order_by=(("priority", DESCENDING), ("run_after", ASCENDING)),
            limit=limit,
        )

    def ready(
        self,
        *,
        backend: str,
        queues: Sequence[str] | None = None,
        limit: int = 100,
        now: datetime | None = None,
    ) -> list[TaskExecution]:
        """READY executions of ``backend`` that are due: highest priority first, then oldest."""
        return self._run(self._ready_query(backend, queues, limit, now or self.clock.now()))

    def listen_ready(
        self,
        *,
        backend: str,
        queues: Sequence[str] | None,
        limit: int,
        until: datetime,
        on_change: Callable[[list[TaskExecution], list[str]], None],
        on_error: OnError,
    ) -> Listening:
        """Follow the first ``limit`` READY executions due by ``until``, in ``ready``'s
        order: ``on_change(executions, ids that left)`` at once and after each change,
        on another thread (see ``DocumentOps.listen``)."""

        def changed(update: QueryUpdate) -> None:
            self.clock.observe(update.read_time)
            left = [c.snapshot.id for c in update.changes if c.kind == "removed"]
            on_change([self._from_snapshot(s) for s in update.documents], left)

        query = self._ready_query(backend, queues, limit, until)
        return self.documents.listen(query, changed, on_error)

    def leases(self, *, backend: str, limit: int = 100) -> list[TaskExecution]:
        """RUNNING executions of ``backend``, the lease expiring first first: the expired
        ones, then when the next one expires (one index with ``expired_leases``)."""
        filters = (
            Filter("status", "==", str(TaskResultStatus.RUNNING)),
            Filter("backend", "==", backend),
        )
        return self._run(
            Query(
                collection=self.collection_name,
                filters=filters,
                order_by=(("lease_expires_at", ASCENDING),),
                limit=limit,
            )
        )

    def expired_leases(
        self, *, backend: str, limit: int = 100, now: datetime | None = None
    ) -> list[TaskExecution]:
        """RUNNING executions of ``backend`` whose lease has expired (their worker died)."""
        filters = (
            Filter("status", "==", str(TaskResultStatus.RUNNING)),
            Filter("backend", "==", backend),
            Filter("lease_expires_at", "<=", now or self.clock.now()),
        )
        return self._run(
            Query(
                collection=self.collection_name,
                filters=filters,
                order_by=(("lease_expires_at", ASCENDING),),
                limit=limit,
            )
        )

    def pending_dispatch(
        self, *, backend: str, older_than: datetime, limit: int = 100
    ) -> list[TaskExecution]:
        """Executions written but not confirmed dispatched before ``older_than`` (for a sweeper)."""
        filters = (
            Filter("dispatch_state", "==", str(DispatchState.PENDING)),
            Filter("backend", "==", backend),
            Filter("enqueued_at", "<=", older_than),
        )
        return self._run(
            Query(
                collection=self.collection_name,
                filters=filters,
                order_by=(("enqueued_at", ASCENDING),),
                limit=limit,
            )
        )

    def _filters(self, filters: ExecutionFilter | None) -> tuple[Filter, ...]:
        chosen = filters or ExecutionFilter()
        return tuple(
            Filter(field, "==", str(getattr(chosen, field)))
            for field in ("status", "backend", "queue_name", "task_path")
            if getattr(chosen, field) is not None
        )

    def page(
        self, filters: ExecutionFilter | None = None, *, cursor: str | None = None, limit: int = 100
    ) -> Page:
        """One page of executions, newest enqueued first, resumable from ``cursor``.

        One execution more than ``limit`` is read, so that ``next_cursor`` is only set
        when there is a next page (never a "Next" link to an empty page)."""
        after = None
        if cursor:
            after = self.documents.get(self.collection_name, self._id(cursor))
            if not after.exists:
                raise ExecutionNotFound(f"Cursor {cursor!r} names no execution.")
        items = self._run(
            Query(
                collection=self.collection_name,
                filters=self._filters(filters),
                order_by=(("enqueued_at", DESCENDING),),
                limit=limit + 1,
                start_after=after,
            )
        )
        if len(items) <= limit:
            return Page(items=items, next_cursor=None)
        return Page(items=items[:limit], next_cursor=items[limit - 1].id)

    def count(self, filters: ExecutionFilter | None = None, *, limit: int | None = None) -> int:
        """Number of matching executions, at most ``limit`` (a Firestore aggregation,
        not a scan). Firestore bills 1 read per 1,000 index entries counted: with a
        ``limit`` the cost stops growing with the collection."""
        return self.documents.count(
            Query(collection=self.collection_name, filters=self._filters(filters), limit=limit)
        )

    def _finished_before(
        self,
        backend: str,
        status: TaskResultStatus,
        before: datetime,
        *,
        select: tuple[str, ...] | None = None,
        limit: int | None = None,
    ) -> Query:
        return Query(
            collection=self.collection_name,
            filters=(
                Filter("status", "==", str(status)),
                Filter("backend", "==", backend),
                Filter("finished_at", "<", before),
            ),
            order_by=(("finished_at", ASCENDING),),
            select=select,
            limit=limit,
        )

    def finished_before(
        self, *, backend: str, status: TaskResultStatus, before: datetime, limit: int = 500
    ) -> list[str]:
        """Ids of ``backend``'s executions with ``status`` that finished before ``before``."""
        query = self._finished_before(backend, status, before, select=("finished_at",), limit=limit)
        return [snapshot.id for snapshot in self.documents.query(query)]

    def count_finished_before(
        self, *, backend: str, status: TaskResultStatus, before: datetime
    ) -> int:
        """How many executions ``finished_before`` would eventually return (aggregation)."""
        return self.documents.count(self._finished_before(backend, status, before))

    def delete_many(self, execution_ids: Sequence[str]) -> int:
        """Delete executions in commits of MAX_BATCH_WRITES."""
        for start in range(0, len(execution_ids), MAX_BATCH_WRITES):
            chunk = execution_ids[start : start + MAX_BATCH_WRITES]
            self.documents.commit([Delete(self.collection_name, self._id(i)) for i in chunk])
        return len(execution_ids)

    def get_many(self, execution_ids: Iterable[str]) -> list[TaskExecution]:
        """Read several executions in one round trip; missing ids are skipped."""
        ids = [self._id(i) for i in execution_ids]
        snapshots = self.documents.get_many(self.collection_name, ids) if ids else []
        return [self._from_snapshot(s) for s in snapshots if s.exists]
