"""Unique enqueue: at most one unfinished execution per (backend, task, key).

A key is a small document (collection ``<prefix>unique_keys``, id a hash of backend
alias, task path and key) naming the execution that holds it. It is written in the
same commit as that execution (one batch: create the key, create the execution), so
a key never names an execution that was not written. Release is lazy: finishing an
execution writes nothing more; the next enqueue with the key reads the key and its
execution, and takes the key over (a compare-and-set on the key's update time, again
in one batch with the new execution) when that execution finished, was deleted, or
the key's throttle window (``held_until``) is over.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from ..exceptions import ContentionError, ExecutionNotFound, StoreUnavailable
from .cas import MAX_CAS_ATTEMPTS, backoff
from .codec import ensure_fits
from .documents import FINISHED_STATUSES, TaskExecution
from .executions import ExecutionStore
from .ops import Create, DocumentExists, PreconditionFailed, Snapshot, Update, Write


class _CommitUnanswered(Exception):
    """A commit got no answer (StoreUnavailable): it may still be applied."""

    def __init__(self, cause: StoreUnavailable) -> None:
        super().__init__(str(cause))
        self.cause = cause


def unique_key_id(backend: str, task_path: str, key: str) -> str:
    """The key document's id: any key string maps to a valid, fixed-size document id."""
    return hashlib.sha256(f"{backend}\n{task_path}\n{key}".encode()).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class UniqueKeyHolder:
    """The document of one unique key: which execution holds it, and until when at least."""

    key: str  #: the task's key, as given
    backend: str
    task_path: str
    execution_id: str  #: the execution that holds the key while it is unfinished
    enqueued_at: datetime  #: when that execution was enqueued
    held_until: datetime | None = None  #: the throttle window's end (``unique_for``)
    expires_at: datetime | None = None  #: for the TTL policy: past any use of the key

    def to_document(self) -> dict[str, Any]:
        """Return the Firestore fields for this key."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class UniqueOutcome:
    """What a unique create did: ``created`` (``execution`` is the new one, written), or
    not (``execution`` is the one holding the key, as read)."""

    execution: TaskExecution
    created: bool


class UniqueKeys:
    """The unique keys beside one execution store (same database, prefix and counting)."""

    def __init__(self, executions: ExecutionStore) -> None:
        self.executions = executions
        self.collection_name = executions.settings.unique_keys_collection

    def create(
        self, execution: TaskExecution, *, key: str, hold_for: timedelta | None = None
    ) -> UniqueOutcome:
        """Write ``execution`` with ``key`` unless an unfinished execution holds the key
        (or one did within ``hold_for`` of its enqueue): then return that one.

        Raises PayloadTooLarge before writing, StoreUnavailable when Firestore does not
        answer (``maybe_written``: whether the commit may have been applied), and
        ContentionError after MAX_CAS_ATTEMPTS lost races for the key.
        """
        try:
            return self._create(execution, key=key, hold_for=hold_for)
        except StoreUnavailable as exc:  # a read: every commit sent was refused or applied
            raise StoreUnavailable(str(exc), execution_id=execution.id) from exc
        except _CommitUnanswered as unanswered:
            cause = unanswered.cause
            raise StoreUnavailable(
                f"{cause} The task was probably not enqueued, but its commit may still be "
                f"applied: enqueue again once Firestore is back (a held key returns its "
                f"execution), or look up id {execution.id!r}.",
                execution_id=execution.id,
                maybe_written=True,
            ) from cause

    def _create(
        self, execution: TaskExecution, *, key: str, hold_for: timedelta | None
    ) -> UniqueOutcome:
        executions = self.executions
        execution = execution.evolve(unique_key=key)  # stored with it: the admin shows it
        data = execution.to_document()
        ensure_fits(
            f"{executions.collection_name}/{execution.id}", data, what="The task's arguments"
        )
        key_id = unique_key_id(execution.backend, execution.task_path, key)
        holder = self._holder(execution, key, hold_for).to_document()
        new = Create(executions.collection_name, execution.id, data)
        for conflicts in range(MAX_CAS_ATTEMPTS):
            try:
                commit_time = self._commit([Create(self.collection_name, key_id, holder), new])
                return self._created(execution, commit_time)
            except DocumentExists:
                pass
            snapshot = executions.documents.get(self.collection_name, key_id)
            if snapshot.data is None:
                continue  # released (expired) since: create it again
            if snapshot.data["execution_id"] == execution.id:
                # An earlier try of this commit was applied, its answer lost (outage).
                return UniqueOutcome(executions.get(execution.id), True)
            current = self._holding(snapshot)
            if current is not None:
                return UniqueOutcome(current, False)
            take_over = Update(self.collection_name, key_id, holder, snapshot.update_time)
            try:
                return self._created(execution, self._commit([take_over, new]))
            except (PreconditionFailed, DocumentExists):
                time.sleep(backoff(conflicts))  # another enqueue took it first: look again
        raise ContentionError(
            f"Gave up on unique key {key!r} after {MAX_CAS_ATTEMPTS} write conflicts."
        )

    def holder_id(self, backend: str, task_path: str, key: str) -> str | None:
        """The id of the execution the key names (finished or not), or None."""
        snapshot = self.executions.documents.get(
            self.collection_name, unique_key_id(backend, task_path, key)
        )
        return None if snapshot.data is None else str(snapshot.data["execution_id"])

    def _holder(
        self, execution: TaskExecution, key: str, hold_for: timedelta | None
    ) -> UniqueKeyHolder:
        settings = self.executions.settings
        held_until = execution.enqueued_at + hold_for if hold_for else None
        keep = [k for k in (settings.retention_successful, settings.retention_failed) if k]
        last_use = max(execution.run_after, held_until or execution.enqueued_at)
        return UniqueKeyHolder(
            key=key,
            backend=execution.backend,
            task_path=execution.task_path,
            execution_id=execution.id,
            enqueued_at=execution.enqueued_at,
            held_until=held_until,
            # Both retentions set: the key outlives its execution's own TTL expiry
            # unless that execution stays unfinished longer than the retention.
            expires_at=last_use + max(keep) if len(keep) == 2 else None,
        )

    def _holding(self, snapshot: Snapshot) -> TaskExecution | None:
        """The execution that still holds the key ``snapshot`` is, or None if it is free."""
        assert snapshot.data is not None
        try:
            current = self.executions.get(str(snapshot.data["execution_id"]))
        except ExecutionNotFound:
            return None  # deleted (retention) or never there: the key is free
        held_until: datetime | None = snapshot.data.get("held_until")
        if current.status not in FINISHED_STATUSES:
            return current
        if held_until is not None and snapshot.read_time < held_until:
            return current
        return None

    def _commit(self, writes: list[Write]) -> datetime:
        """Commit ``writes``; an outage during it becomes _CommitUnanswered (it may land)."""
        try:
            return self.executions.documents.commit(writes)
        except StoreUnavailable as exc:
            raise _CommitUnanswered(exc) from exc

    def _created(self, execution: TaskExecution, commit_time: datetime) -> UniqueOutcome:
        self.executions.clock.observe(commit_time)
        return UniqueOutcome(execution.evolve(update_time=commit_time), True)
