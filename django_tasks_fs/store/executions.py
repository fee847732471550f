"""Execution documents in Firestore: create, claim, heartbeat, finish, cancel, query.

Every change is a single-document compare-and-set on the document's update time
(``update(..., option=write_option(last_update_time=...))``), retried with a fresh read
when another writer got there first. Read-write transactions livelock on the emulator
and are not needed for one document (see docs/explanation/data-model.md).
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.tasks import TaskResultStatus
from google.api_core.exceptions import FailedPrecondition, NotFound
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from ..exceptions import ContentionError as ContentionError  # re-exported (moved there)
from ..exceptions import ExecutionNotFound
from . import transitions
from .calls import Calls
from .client import ServerClock, StoreSettings
from .codec import ensure_fits
from .documents import DispatchState, ErrorEntry, Lease, TaskExecution, is_document_id
from .errors import ClaimRefused, LeaseLost
from .transitions import CancelOutcome

#: A compare-and-set gives up after this many lost races in a row.
MAX_CAS_ATTEMPTS = 50
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


Step = Callable[[TaskExecution, datetime], TaskExecution]


def new_execution_id() -> str:
    """A random, URL-safe id (also a valid Cloud Tasks task id)."""
    return secrets.token_hex(16)


def new_lease_owner(worker_id: str) -> str:
    return f"{worker_id}:{secrets.token_hex(8)}"


class ExecutionStore:
    """Task executions of one Firestore database and collection prefix."""

    def __init__(self, settings: StoreSettings) -> None:
        self.settings = settings
        self.calls = Calls(settings)  #: every request, bounded (see store.calls)
        # Learns Firestore's time before its first decision (see ServerClock).
        self.clock = ServerClock(
            source=lambda: self.calls.server_time(settings.executions_collection)
        )

    @property
    def client(self) -> firestore.Client:
        return self.calls.client

    @property
    def collection(self) -> firestore.CollectionReference:
        return self.client.collection(self.settings.executions_collection)

    def _ref(self, execution_id: str) -> firestore.DocumentReference:
        if not isinstance(execution_id, str) or not is_document_id(execution_id):
            raise ExecutionNotFound(f"No task execution with id {execution_id!r}.")
        return self.collection.document(execution_id)

    def _from_snapshot(self, snapshot: Any) -> TaskExecution:
        data = snapshot.to_dict()
        assert data is not None
        return TaskExecution.from_document(snapshot.id, data, snapshot.update_time)

    # -- single documents ------------------------------------------------------------

    def create(self, execution: TaskExecution, *, timeout: float | None = None) -> TaskExecution:
        """Write a new execution (one write); raise PayloadTooLarge before writing, and
        StoreUnavailable if Firestore does not take it within ``timeout`` seconds
        (default: the settings')."""
        ref = self._ref(execution.id)
        data = execution.to_document()
        ensure_fits(ref.path, data, what="The task's arguments")
        update_time = self.calls.create_unique(
            ref, data, timeout=timeout, subject="the task", verb="enqueued"
        )
        if update_time is not None:
            self.clock.observe(update_time)
        return execution.evolve(update_time=update_time)

    def get(self, execution_id: str) -> TaskExecution:
        """Read one execution; raise ExecutionNotFound."""
        return self._read(self._ref(execution_id))[0]

    def delete(self, execution_id: str) -> None:
        self.calls.delete(self._ref(execution_id))

    def check_writable(self, execution: TaskExecution) -> None:
        """Raise PayloadError if ``execution`` could not be stored (not JSON, too large)."""
        ensure_fits(
            self._ref(execution.id).path, execution.to_document(), what="The task's return value"
        )

    def _read(
        self, ref: firestore.DocumentReference, *, timeout: float | None = None
    ) -> tuple[TaskExecution, datetime]:
        snapshot = self.calls.get(ref, timeout=timeout)
        if not snapshot.exists:
            raise ExecutionNotFound(f"No task execution with id {ref.id!r}.")
        return self._from_snapshot(snapshot), self.clock.observe(snapshot.read_time)

    def _write(
        self,
        ref: firestore.DocumentReference,
        before: TaskExecution,
        after: TaskExecution,
        *,
        timeout: float | None = None,
    ) -> TaskExecution:
        old, new = before.to_document(), after.to_document()
        changes = {key: value for key, value in new.items() if old.get(key) != value}
        if not changes:
            return before
        if "return_value" in changes:
            ensure_fits(ref.path, new, what="The task's return value")
        assert before.update_time is not None
        option = self.client.write_option(last_update_time=before.update_time)
        try:
            result = self.calls.update(ref, changes, option=option, timeout=timeout)
        except NotFound:
            raise ExecutionNotFound(f"No task execution with id {ref.id!r}.") from None
        self.clock.observe(result.update_time)
        return after.evolve(update_time=result.update_time)

    def _compare_and_set(
        self,
        execution_id: str,
        step: Step,
        *,
        known: TaskExecution | None = None,
        timeout: float | None = None,
    ) -> TaskExecution:
        """Apply ``step`` to the current version and write it only if nobody wrote since.

        ``known`` (a version already read, with its update time) saves the first read.
        ``step`` may raise to refuse; it is called again after every lost race.
        ``timeout`` bounds each request (one try, no retries): the caller retries.
        """
        ref = self._ref(execution_id)
        current = known if known is not None and known.update_time is not None else None
        for conflicts in range(MAX_CAS_ATTEMPTS):
            if current is None:
                current, now = self._read(ref, timeout=timeout)
            else:
                now = self.clock.now()
            after = step(current, now)
            try:
                return self._write(ref, current, after, timeout=timeout)
            except FailedPrecondition:
                current = None
                # Jittered backoff so two writers that keep colliding drift apart.
                time.sleep(random.uniform(0, min(0.05, 0.001 * 2**conflicts)))
        raise ContentionError(
            f"Gave up on execution {execution_id!r} after {MAX_CAS_ATTEMPTS} write conflicts."
        )

    def _write_batch(
        self, pairs: Sequence[tuple[TaskExecution, TaskExecution]]
    ) -> list[TaskExecution] | None:
        """Write several (before, after) pairs in one commit, each conditional on its
        update time; None (nothing written) if any precondition failed."""
        batch = self.client.batch()
        written: list[tuple[TaskExecution, TaskExecution]] = []
        for before, after in pairs:
            old, new = before.to_document(), after.to_document()
            changes = {key: value for key, value in new.items() if old.get(key) != value}
            if "return_value" in changes:
                ensure_fits(self._ref(after.id).path, new, what="The task's return value")
            assert before.update_time is not None
            if changes:
                option = self.client.write_option(last_update_time=before.update_time)
                batch.update(self._ref(after.id), changes, option=option)
            written.append((before, after))
        if not len(batch):
            return [before for before, _ in written]
        try:
            results = self.calls.commit(batch)
        except (FailedPrecondition, NotFound):
            return None
        update_time = results[0].update_time if results else None
        if update_time is not None:
            self.clock.observe(update_time)
        # A batch commits atomically: every written document has the commit's update time.
        return [after.evolve(update_time=update_time) for _, after in written]

    # -- the attempt lifecycle ---------------------------------------------------------

    def _decide_claim(
        self,
        current: TaskExecution,
        *,
        owner: str,
        worker_id: str,
        now: datetime,
        lease_duration: timedelta,
        backend: str | None,
    ) -> tuple[TaskExecution, ClaimRefused | None]:
        """The state a claim writes: the new attempt, or the FAILED state of a refusal
        that ends the execution (with that refusal). Raises ClaimRefused otherwise."""
        try:
            after = transitions.claim(
                current,
                self.settings,
                owner=owner,
                worker_id=worker_id,
                now=now,
                lease_duration=lease_duration,
                backend=backend,
            )
        except ClaimRefused as exc:
            if exc.execution is None or not exc.execution.is_finished or current.is_finished:
                raise
            return exc.execution, exc  # run_once / exhausted / cancelled: close it
        return after, None

    def claim(
        self,
        execution_id: str,
        *,
        worker_id: str,
        lease_duration: timedelta,
        known: TaskExecution | None = None,
        max_attempts: int | None = None,
        backend: str | None = None,
    ) -> Lease:
        """Win the lease for a new attempt; raise ClaimRefused with the reason otherwise.

        ``backend`` refuses (NOT_FOUND, nothing written) another backend's execution.
        ``max_attempts`` overrides the stored limit (e.g. from a Cloud Tasks queue's
        retry config); 0 means unlimited, None keeps the stored limit. A refusal that ends the execution (run_once, exhausted,
        cancelled) writes it as FAILED first, so nothing stays RUNNING.
        """
        owner = new_lease_owner(worker_id)
        refusal: list[ClaimRefused] = []

        def step(current: TaskExecution, now: datetime) -> TaskExecution:
            refusal.clear()
            if max_attempts is not None:
                current = current.evolve(max_attempts=max_attempts or None)
            after, refused = self._decide_claim(
                current,
                owner=owner,
                worker_id=worker_id,
                now=now,
                lease_duration=lease_duration,
                backend=backend,
            )
            if refused is not None:
                refusal.append(refused)  # persist the FAILED state, then refuse
            return after

        written = self._compare_and_set(execution_id, step, known=known)
        if refusal:
            raise ClaimRefused(refusal[0].reason, written)
        return Lease(owner=owner, execution=written)

    def claim_many(
        self,
        known: Sequence[TaskExecution],
        *,
        worker_id: str,
        lease_duration: timedelta,
        backend: str | None = None,
    ) -> list[Lease]:
        """Claim several executions just read by a query, in one commit when nobody raced us.

        Executions that cannot be claimed are skipped; if the batch conflicts, each one
        is claimed on its own (so a race costs speed, never correctness).
        """
        now = self.clock.now()
        owners: dict[str, str] = {}
        pairs: list[tuple[TaskExecution, TaskExecution]] = []
        for execution in known:
            owner = new_lease_owner(worker_id)
            try:
                after, refused = self._decide_claim(
                    execution,
                    owner=owner,
                    worker_id=worker_id,
                    now=now,
                    lease_duration=lease_duration,
                    backend=backend,
                )
            except ClaimRefused:
                continue  # claim() would tell why; the batch just skips it
            if refused is None:
                owners[execution.id] = owner
            pairs.append((execution, after))
        written = self._write_batch(pairs) if pairs else []
        if written is not None:
            return [Lease(owner=owners[e.id], execution=e) for e in written if e.id in owners]
        leases = []
        for execution in known:
            try:
                leases.append(
                    self.claim(
                        execution.id,
                        worker_id=worker_id,
                        lease_duration=lease_duration,
                        backend=backend,
                    )
                )
            except (ClaimRefused, ExecutionNotFound):
                continue
        return leases

    def write_many(self, items: Sequence[tuple[Lease, Step]]) -> list[TaskExecution | LeaseLost]:
        """Apply each lease holder's ``step`` (finish, fail, ...) in one commit if possible.

        Falls back to one compare-and-set per item when any of them conflicts; an item
        whose lease is gone comes back as a LeaseLost instance instead of an execution.
        """
        now = self.clock.now()
        pairs: list[tuple[TaskExecution, TaskExecution]] = []
        try:
            for lease, step in items:
                pairs.append((lease.execution, step(lease.execution, now)))
            written: list[TaskExecution] | None = self._write_batch(pairs)
        except LeaseLost:
            written = None
        if written is not None:
            return list(written)
        results: list[TaskExecution | LeaseLost] = []
        for lease, step in items:
            try:
                results.append(self.write_as_owner(lease, step))
            except LeaseLost as exc:
                results.append(exc)
        return results

    def write_as_owner(
        self, lease: Lease, step: Step, *, timeout: float | None = None
    ) -> TaskExecution:
        """Write as the lease holder: one conditional write, or LeaseLost."""
        return self._compare_and_set(
            lease.execution_id, step, known=lease.execution, timeout=timeout
        )

    def renew(
        self, lease: Lease, *, lease_duration: timedelta, timeout: float | None = None
    ) -> Lease:
        """Extend the lease (heartbeat); the new Lease reports any cancel request.

        ``timeout``: give up after that many seconds (no retries inside): a renewal
        that answers after the lease ran out is worth nothing to the heartbeat.
        """
        written = self.write_as_owner(
            lease,
            lambda current, now: transitions.renew(
                current, owner=lease.owner, now=now, lease_duration=lease_duration
            ),
            timeout=timeout,
        )
        return Lease(owner=lease.owner, execution=written)

    def succeed(self, lease: Lease, return_value: Any) -> TaskExecution:
        """Record success; raise LeaseLost (nothing written) if the lease is gone."""
        return self.write_as_owner(
            lease,
            lambda current, now: transitions.succeed(
                current, self.settings, owner=lease.owner, now=now, return_value=return_value
            ),
        )

    def fail(
        self, lease: Lease, error: ErrorEntry, *, retryable: bool, retry_at: datetime | None = None
    ) -> TaskExecution:
        """Record a failed attempt: READY for another one when allowed, else FAILED."""
        return self.write_as_owner(
            lease,
            lambda current, now: transitions.fail(
                current,
                self.settings,
                owner=lease.owner,
                now=now,
                error=error,
                retryable=retryable,
                retry_at=retry_at,
            ),
        )

    def release(self, lease: Lease) -> TaskExecution:
        """Hand an unfinished attempt back as READY (graceful shutdown), uncounted."""
        return self.write_as_owner(
            lease, lambda current, now: transitions.release(current, owner=lease.owner)
        )

    def cancel(
        self, execution_id: str, *, force: bool = False
    ) -> tuple[TaskExecution, CancelOutcome]:
        """Cancel: finished executions are left alone; running ones are asked to stop."""
        outcome: list[CancelOutcome] = []

        def step(current: TaskExecution, now: datetime) -> TaskExecution:
            after, result = transitions.cancel(current, self.settings, now=now, force=force)
            outcome[:] = [result]
            return after

        written = self._compare_and_set(execution_id, step)
        return written, outcome[0]

    def set_dispatch(
        self, execution_id: str, state: DispatchState, *, error: str | None = None, **names: str
    ) -> TaskExecution:
        """Record the dispatch outcome (and Cloud resource names) of an execution."""
        allowed = {"cloud_task_name", "cloud_run_execution"}
        if not set(names) <= allowed:
            raise TypeError(f"Unknown resource name fields: {sorted(set(names) - allowed)}")

        def step(current: TaskExecution, now: datetime) -> TaskExecution:
            if state == DispatchState.DISPATCHED:
                return current.evolve(
                    dispatch_state=state, dispatch_error=None, dispatched_at=now, **names
                )
            return current.evolve(dispatch_state=state, dispatch_error=error, **names)

        return self._compare_and_set(execution_id, step)

    def refuse_dispatch(self, execution_id: str, error: ErrorEntry) -> TaskExecution:
        """Close an execution the platform cannot take FAILED (transitions.refuse_dispatch)."""
        return self._compare_and_set(
            execution_id,
            lambda current, now: transitions.refuse_dispatch(
                current, self.settings, now=now, error=error
            ),
        )

    def mark_for_redispatch(
        self, execution_id: str, *, grace: timedelta, stale: timedelta
    ) -> TaskExecution | None:
        """Mark an abandoned execution PENDING again (see transitions.needs_redispatch);
        None if, on a fresh read, it no longer needs it (someone else got there first)."""
        marked: list[TaskExecution] = []

        def step(current: TaskExecution, now: datetime) -> TaskExecution:
            marked.clear()
            if not transitions.needs_redispatch(current, now, grace=grace, stale=stale):
                return current
            marked.append(transitions.redispatch(current))
            return marked[0]

        written = self._compare_and_set(execution_id, step)
        return written if marked else None

    # -- queries -----------------------------------------------------------------------

    def _where(self, query: Any, field: str, op: str, value: Any) -> Any:
        return query.where(filter=FieldFilter(field, op, value))

    def ready(
        self,
        *,
        backend: str,
        queues: Sequence[str] | None = None,
        limit: int = 100,
        now: datetime | None = None,
    ) -> list[TaskExecution]:
        """READY executions of ``backend`` that are due: highest priority first, then oldest."""
        query = self._where(self.collection, "status", "==", str(TaskResultStatus.READY))
        query = self._where(query, "backend", "==", backend)
        if queues:
            queue_list = sorted(set(queues))
            if len(queue_list) > MAX_IN_VALUES:
                raise ValueError(f"At most {MAX_IN_VALUES} queues can be polled at once.")
            query = self._where(query, "queue_name", "in", queue_list)
        query = self._where(query, "run_after", "<=", now or self.clock.now())
        query = query.order_by("priority", direction=firestore.Query.DESCENDING)
        query = query.order_by("run_after").limit(limit)
        return [self._from_snapshot(s) for s in self.calls.stream(query)]

    def expired_leases(
        self, *, backend: str, limit: int = 100, now: datetime | None = None
    ) -> list[TaskExecution]:
        """RUNNING executions of ``backend`` whose lease has expired (their worker died)."""
        query = self._where(self.collection, "status", "==", str(TaskResultStatus.RUNNING))
        query = self._where(query, "backend", "==", backend)
        query = self._where(query, "lease_expires_at", "<=", now or self.clock.now())
        query = query.order_by("lease_expires_at").limit(limit)
        return [self._from_snapshot(s) for s in self.calls.stream(query)]

    def pending_dispatch(
        self, *, backend: str, older_than: datetime, limit: int = 100
    ) -> list[TaskExecution]:
        """Executions written but not confirmed dispatched before ``older_than`` (for a sweeper)."""
        query = self._where(self.collection, "dispatch_state", "==", str(DispatchState.PENDING))
        query = self._where(query, "backend", "==", backend)
        query = self._where(query, "enqueued_at", "<=", older_than)
        query = query.order_by("enqueued_at").limit(limit)
        return [self._from_snapshot(s) for s in self.calls.stream(query)]

    def _filtered(self, filters: ExecutionFilter) -> Any:
        query: Any = self.collection
        for field in ("status", "backend", "queue_name", "task_path"):
            value = getattr(filters, field)
            if value is not None:
                query = self._where(query, field, "==", str(value))
        return query

    def page(
        self, filters: ExecutionFilter | None = None, *, cursor: str | None = None, limit: int = 100
    ) -> Page:
        """One page of executions, newest enqueued first, resumable from ``cursor``."""
        query = self._filtered(filters or ExecutionFilter())
        query = query.order_by("enqueued_at", direction=firestore.Query.DESCENDING)
        if cursor:
            snapshot = self.calls.get(self._ref(cursor))
            if not snapshot.exists:
                raise ExecutionNotFound(f"Cursor {cursor!r} names no execution.")
            query = query.start_after(snapshot)
        items = [self._from_snapshot(s) for s in self.calls.stream(query.limit(limit))]
        next_cursor = items[-1].id if len(items) == limit else None
        return Page(items=items, next_cursor=next_cursor)

    def _finished_before(self, backend: str, status: TaskResultStatus, before: datetime) -> Any:
        query = self._where(self.collection, "status", "==", str(status))
        query = self._where(query, "backend", "==", backend)
        return self._where(query, "finished_at", "<", before).order_by("finished_at")

    def finished_before(
        self, *, backend: str, status: TaskResultStatus, before: datetime, limit: int = 500
    ) -> list[str]:
        """Ids of ``backend``'s executions with ``status`` that finished before ``before``."""
        query = self._finished_before(backend, status, before).select(["finished_at"]).limit(limit)
        return [snapshot.id for snapshot in self.calls.stream(query)]

    def count_finished_before(
        self, *, backend: str, status: TaskResultStatus, before: datetime
    ) -> int:
        """How many executions ``finished_before`` would eventually return (aggregation)."""
        return self.calls.count(self._finished_before(backend, status, before))

    def delete_many(self, execution_ids: Sequence[str]) -> int:
        """Delete executions in batches of 500 (Firestore's limit per commit)."""
        for start in range(0, len(execution_ids), 500):
            batch = self.client.batch()
            for execution_id in execution_ids[start : start + 500]:
                batch.delete(self._ref(execution_id))
            self.calls.commit(batch)
        return len(execution_ids)

    def count(self, filters: ExecutionFilter | None = None) -> int:
        """Number of matching executions (a Firestore aggregation, not a scan)."""
        return self.calls.count(self._filtered(filters or ExecutionFilter()))

    def get_many(self, execution_ids: Iterable[str]) -> list[TaskExecution]:
        """Read several executions in one round trip; missing ids are skipped."""
        refs = [self._ref(i) for i in execution_ids]
        snapshots = self.calls.get_all(refs)
        return [self._from_snapshot(s) for s in snapshots if s.exists]
