"""Execution documents, one at a time: create, read, and the conditional writes that
every lifecycle verb is made of (single-document compare-and-set, or one batch).

Every change is a compare-and-set on the document's update time, retried with a fresh
read when another writer got there first (store.cas). Read-write transactions livelock
on the emulator and are not needed for one document (see docs/explanation/data-model.md).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from google.cloud import firestore

from ...exceptions import ExecutionNotFound, PayloadTooLarge
from ..cas import compare_and_set
from ..client import ServerClock, StoreSettings
from ..codec import ensure_fits
from ..documents import TaskExecution, is_document_id
from ..ops import (
    CountingOps,
    DocumentMissing,
    DocumentOpError,
    DocumentOps,
    FirestoreOps,
    Snapshot,
    UniqueCreate,
    Update,
    document_ops,
)

Step = Callable[[TaskExecution, datetime], TaskExecution]

#: How an outage while enqueueing is worded (see store.calls.create_unique).
_ENQUEUE = UniqueCreate(subject="the task", verb="enqueued")
_ENQUEUE_MANY = UniqueCreate(subject="this commit of tasks", verb="written")

#: Documents written per commit by the store's batches (deletes, bulk enqueue).
#: Firestore's old cap of 500 writes per commit is gone from its limits; what binds now
#: is the 10 MiB request (MAX_COMMIT_BYTES). 500 keeps each commit's request and latency
#: bounded, and 2,000 enqueues cost 4 commits instead of 2,000.
MAX_BATCH_WRITES = 500
#: Bytes of documents per commit, under Firestore's 10 MiB per request (the rest is
#: headroom for the request's own encoding): ten documents near the 1 MiB limit
#: already need two commits.
MAX_COMMIT_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class NewBatch:
    """New executions to write in one commit, each with its document (see plan_creates)."""

    documents: tuple[tuple[TaskExecution, dict[str, Any]], ...]

    @property
    def executions(self) -> list[TaskExecution]:
        return [execution for execution, _ in self.documents]


def new_execution_id() -> str:
    """A random, URL-safe id (also a valid Cloud Tasks task id)."""
    return secrets.token_hex(16)


def new_lease_owner(worker_id: str) -> str:
    return f"{worker_id}:{secrets.token_hex(8)}"


def _changes(before: TaskExecution, after: TaskExecution) -> dict[str, Any]:
    old, new = before.to_document(), after.to_document()
    return {key: value for key, value in new.items() if old.get(key) != value}


class ExecutionDocuments:
    """Task executions of one database and collection prefix: the primitives."""

    def __init__(self, settings: StoreSettings) -> None:
        self.settings = settings
        self._documents = document_ops(settings)
        self.collection_name = settings.executions_collection
        # Learns the server's time before its first decision (see ServerClock).
        self.clock = ServerClock(
            source=lambda: self.documents.server_time(settings.executions_collection)
        )

    @property
    def documents(self) -> DocumentOps:
        """Where the documents live (Firestore, or this process's memory)."""
        return self._documents

    @property
    def client(self) -> firestore.Client:
        """The Firestore client (for tests that count or cut its requests)."""
        ops = self._documents
        if isinstance(ops, CountingOps):
            ops = ops.inner
        if not isinstance(ops, FirestoreOps):
            raise TypeError(f"{self.settings.target()} has no Firestore client.")
        return ops.client

    def _id(self, execution_id: str) -> str:
        if not isinstance(execution_id, str) or not is_document_id(execution_id):
            raise ExecutionNotFound(f"No task execution with id {execution_id!r}.")
        return execution_id

    def _path(self, execution_id: str) -> str:
        return f"{self.collection_name}/{execution_id}"

    def _from_snapshot(self, snapshot: Snapshot) -> TaskExecution:
        assert snapshot.data is not None
        return TaskExecution.from_document(snapshot.id, snapshot.data, snapshot.update_time)

    # -- single documents ------------------------------------------------------------

    def create(self, execution: TaskExecution, *, timeout: float | None = None) -> TaskExecution:
        """Write a new execution (one write); raise PayloadTooLarge before writing, and
        StoreUnavailable if Firestore does not take it within ``timeout`` seconds
        (default: the settings')."""
        data = execution.to_document()
        ensure_fits(self._path(self._id(execution.id)), data, what="The task's arguments")
        update_time = self.documents.create(
            self.collection_name, execution.id, data, timeout=timeout, unique=_ENQUEUE
        )
        if update_time is not None:
            self.clock.observe(update_time)
        return execution.evolve(update_time=update_time)

    def plan_creates(self, executions: Sequence[TaskExecution]) -> list[NewBatch]:
        """Split new executions into commits; raise PayloadTooLarge (naming the call by
        its position) before anything is written if one of them could not be stored."""
        batches: list[NewBatch] = []
        current: list[tuple[TaskExecution, dict[str, Any]]] = []
        size = 0
        for index, execution in enumerate(executions):
            data = execution.to_document()
            path = self._path(self._id(execution.id))
            try:
                bytes_ = ensure_fits(path, data, what="The task's arguments")
            except PayloadTooLarge as exc:
                raise PayloadTooLarge(f"Call {index}: {exc}") from None
            if current and (len(current) >= MAX_BATCH_WRITES or size + bytes_ > MAX_COMMIT_BYTES):
                batches.append(NewBatch(tuple(current)))
                current, size = [], 0
            current.append((execution, data))
            size += bytes_
        if current:
            batches.append(NewBatch(tuple(current)))
        return batches

    def create_batch(self, batch: NewBatch, *, timeout: float | None = None) -> list[TaskExecution]:
        """Write one planned commit of new executions (all or none), retried through an
        outage as ``create`` is; raise StoreUnavailable (``execution_id`` is the batch's
        first) if Firestore does not take it within ``timeout`` seconds."""
        documents = [(execution.id, data) for execution, data in batch.documents]
        update_time = self.documents.create_many(
            self.collection_name, documents, timeout=timeout, unique=_ENQUEUE_MANY
        )
        if update_time is not None:
            self.clock.observe(update_time)
        return [execution.evolve(update_time=update_time) for execution, _ in batch.documents]

    def get(self, execution_id: str) -> TaskExecution:
        """Read one execution; raise ExecutionNotFound."""
        return self._read(self._id(execution_id))[0]

    def delete(self, execution_id: str) -> None:
        self.documents.delete(self.collection_name, self._id(execution_id))

    def check_writable(self, execution: TaskExecution) -> None:
        """Raise PayloadError if ``execution`` could not be stored (not JSON, too large)."""
        ensure_fits(
            self._path(execution.id), execution.to_document(), what="The task's return value"
        )

    def _read(
        self, execution_id: str, *, timeout: float | None = None
    ) -> tuple[TaskExecution, datetime]:
        snapshot = self.documents.get(self.collection_name, execution_id, timeout=timeout)
        if not snapshot.exists:
            raise ExecutionNotFound(f"No task execution with id {execution_id!r}.")
        return self._from_snapshot(snapshot), self.clock.observe(snapshot.read_time)

    def _update(self, before: TaskExecution, after: TaskExecution) -> Update | None:
        """The conditional write from ``before`` to ``after``; None if nothing changed."""
        changes = _changes(before, after)
        if not changes:
            return None
        if "return_value" in changes:
            ensure_fits(self._path(after.id), after.to_document(), what="The task's return value")
        assert before.update_time is not None
        return Update(self.collection_name, after.id, changes, before.update_time)

    def _write(
        self, before: TaskExecution, after: TaskExecution, *, timeout: float | None = None
    ) -> TaskExecution:
        update = self._update(before, after)
        if update is None:
            return before
        try:
            update_time = self.documents.update(
                update.collection,
                update.id,
                update.changes,
                last_update_time=update.last_update_time,
                timeout=timeout,
            )
        except DocumentMissing:
            raise ExecutionNotFound(f"No task execution with id {after.id!r}.") from None
        self.clock.observe(update_time)
        return after.evolve(update_time=update_time)

    def _decide_and_set[X](
        self,
        execution_id: str,
        decide: Callable[[TaskExecution, datetime], tuple[TaskExecution, X]],
        *,
        known: TaskExecution | None = None,
        timeout: float | None = None,
    ) -> tuple[TaskExecution, X]:
        """Apply ``decide`` to the current version, written only if nobody wrote since;
        return the written version and what ``decide`` returned besides.

        ``known`` (a version already read, with its update time) saves the first read.
        ``timeout`` bounds each request (one try, no retries): the caller retries.
        """
        execution_id = self._id(execution_id)
        return compare_and_set(
            read=lambda: self._read(execution_id, timeout=timeout),
            decide=decide,
            write=lambda before, after: self._write(before, after, timeout=timeout),
            known=known if known is not None and known.update_time is not None else None,
            now=self.clock.now,
            subject=f"execution {execution_id!r}",
        )

    def _compare_and_set(
        self,
        execution_id: str,
        step: Step,
        *,
        known: TaskExecution | None = None,
        timeout: float | None = None,
    ) -> TaskExecution:
        """``_decide_and_set`` for a ``step`` that only returns the new version."""
        written, _ = self._decide_and_set(
            execution_id,
            lambda current, now: (step(current, now), None),
            known=known,
            timeout=timeout,
        )
        return written

    def _write_batch(
        self, pairs: Sequence[tuple[TaskExecution, TaskExecution]]
    ) -> list[TaskExecution] | None:
        """Write several (before, after) pairs in one commit, each conditional on its
        update time; None (nothing written) if any precondition failed."""
        updates = [u for u in (self._update(b, a) for b, a in pairs) if u is not None]
        if not updates:
            return [before for before, _ in pairs]
        try:
            update_time = self.clock.observe(self.documents.commit(updates))
        except DocumentOpError:
            return None
        changed = {u.id for u in updates}
        # A batch commits atomically: every written document has the commit's update time.
        return [
            a.evolve(update_time=update_time if a.id in changed else b.update_time)
            for b, a in pairs
        ]
