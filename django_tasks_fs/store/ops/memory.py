"""The document operations in this process's memory: Firestore's semantics, no server.

For tests and demos that need no emulator (backend option ``"store": "memory"``). The
documents live in a process-global ``MemoryDatabase`` per (project, database), shared by
every backend and store of the process that names them; other processes (``run_tasks``
children, ``execute_task`` subprocesses) cannot see them. ``reset_memory()`` wipes them.

Semantics kept from Firestore (tests/contract runs the same tests on both): update
times strictly increase (a batch gives all its documents the commit time; a write that
changes nothing keeps the old time), preconditions on a stale or missing document fail
with PreconditionFailed, batches are all-or-nothing, query order and cursors follow
Firestore's value ordering with ties broken by document id, data is copied in and out,
listeners get the result, then each change, on a thread of their own.
"""

from __future__ import annotations

import copy
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .ordering import effective_order, matches, sort_key
from .protocol import (
    Change,
    Create,
    Delete,
    DocumentExists,
    DocumentMissing,
    OnError,
    OnUpdate,
    PreconditionFailed,
    Query,
    QueryUpdate,
    Snapshot,
    UniqueCreate,
    Update,
    Write,
    check_distinct,
)

#: Firestore timestamps have microsecond precision in the Python client.
TICK = timedelta(microseconds=1)


def system_clock() -> datetime:
    return datetime.now(UTC)


def _stored(value: Any) -> Any:
    """A deep copy of ``value`` as Firestore would store it (tuples become lists,
    datetimes UTC; a naive datetime is taken as UTC, as the client does)."""
    if isinstance(value, dict):
        return {str(k): _stored(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_stored(v) for v in value]
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return copy.copy(value)


@dataclass(frozen=True, slots=True)
class _Document:
    data: dict[str, Any]
    update_time: datetime


class MemoryDatabase:
    """The documents of one (project, database), guarded by one lock."""

    def __init__(self, clock: Callable[[], datetime] = system_clock) -> None:
        #: Where server time comes from; tests may replace it (times still never go back).
        self.clock = clock
        self._collections: dict[str, dict[str, _Document]] = {}
        self._last = datetime.min.replace(tzinfo=UTC)
        self.lock = threading.RLock()
        self._listeners: list[_Listener] = []

    def now(self) -> datetime:
        """The server time of a read: never before the last commit."""
        with self.lock:
            return max(self.clock(), self._last)

    def _commit_time(self) -> datetime:
        self._last = max(self.clock(), self._last + TICK)
        return self._last

    def clear(self) -> None:
        with self.lock:
            self._collections.clear()
            self._notify()

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener.refresh()

    def break_listeners(self, error: Exception) -> None:
        """Break every live listener with ``error`` (tests: a lost connection)."""
        with self.lock:
            for listener in list(self._listeners):
                listener.fail(error)

    def snapshot(self, collection: str, id: str, read_time: datetime) -> Snapshot:
        document = self._collections.get(collection, {}).get(id)
        if document is None:
            return Snapshot(id=id, data=None, update_time=None, read_time=read_time)
        return Snapshot(
            id=id,
            data=copy.deepcopy(document.data),
            update_time=document.update_time,
            read_time=read_time,
        )

    def update_times(self) -> dict[str, datetime]:
        """``collection/id`` -> update time of every document (tests: did anything change?)."""
        with self.lock:
            return {
                f"{collection}/{id}": document.update_time
                for collection, documents in self._collections.items()
                for id, document in documents.items()
            }

    def documents(self, collection: str) -> list[tuple[str, dict[str, Any]]]:
        return [(i, d.data) for i, d in self._collections.get(collection, {}).items()]

    def apply(self, writes: Sequence[Write]) -> datetime:
        """Check every write against the current documents, then apply all of them
        with one commit time; raise (and change nothing) on the first refusal."""
        with self.lock:
            check_distinct(writes)
            staged: dict[tuple[str, str], dict[str, Any] | None] = {}
            for write in writes:
                key = (write.collection, write.id)
                document = self._collections.get(write.collection, {}).get(write.id)
                before = None if document is None else document.data
                if isinstance(write, Create):
                    if before is not None:
                        raise DocumentExists(f"Document {write.collection}/{write.id} exists.")
                    staged[key] = _stored(write.data)
                    continue
                self._check_precondition(write, document)
                if isinstance(write, Update):
                    if before is None:
                        raise DocumentMissing(f"No document {write.collection}/{write.id}.")
                    staged[key] = {**before, **_stored(write.changes)}
                else:
                    staged[key] = None
            commit_time = self._commit_time()
            for (collection, id), data in staged.items():
                documents = self._collections.setdefault(collection, {})
                old = documents.get(id)
                if data is None:
                    documents.pop(id, None)
                elif old is None or old.data != data:  # an unchanged document keeps its time
                    documents[id] = _Document(data, commit_time)
            self._notify()
            return commit_time

    @staticmethod
    def _check_precondition(write: Update | Delete, document: _Document | None) -> None:
        if write.last_update_time is None:
            return
        stored = None if document is None else document.update_time
        if stored != write.last_update_time:
            raise PreconditionFailed(
                f"Document {write.collection}/{write.id} was updated at {stored}, "
                f"not {write.last_update_time}."
            )


_databases: dict[tuple[str | None, str], MemoryDatabase] = {}
_databases_lock = threading.Lock()


def memory_database(project: str | None, database: str) -> MemoryDatabase:
    """The process-global in-memory database for ``project`` and ``database``."""
    with _databases_lock:
        return _databases.setdefault((project, database), MemoryDatabase())


def reset_memory() -> None:
    """Forget every in-memory document (of every project and database)."""
    with _databases_lock:
        databases = list(_databases.values())
    for database in databases:
        database.clear()


class MemoryOps:
    """``DocumentOps`` over a ``MemoryDatabase``."""

    def __init__(self, database: MemoryDatabase) -> None:
        self.database = database

    def get(self, collection: str, id: str, *, timeout: float | None = None) -> Snapshot:
        with self.database.lock:
            return self.database.snapshot(collection, id, self.database.now())

    def get_many(self, collection: str, ids: Sequence[str]) -> list[Snapshot]:
        with self.database.lock:
            now = self.database.now()
            return [self.database.snapshot(collection, i, now) for i in ids]

    def _matching(self, query: Query) -> list[tuple[str, dict[str, Any]]]:
        order = effective_order(query)
        found = []
        for id, data in self.database.documents(query.collection):
            key = sort_key(id, data, order)
            if key is not None and matches(id, data, query.filters):
                found.append((key, id, data))
        found.sort(key=lambda item: item[0])
        if query.start_after is not None:
            cursor = query.start_after
            after = sort_key(cursor.id, cursor.data or {}, order)
            if after is None:
                raise ValueError(f"The cursor {cursor.id!r} lacks a field the query orders by.")
            found = [item for item in found if item[0] > after]
        if query.limit is not None:
            found = found[: query.limit]
        return [(id, data) for _, id, data in found]

    def query(self, query: Query) -> list[Snapshot]:
        with self.database.lock:
            now = self.database.now()
            results = []
            for id, _ in self._matching(query):
                snapshot = self.database.snapshot(query.collection, id, now)
                if query.select is not None and snapshot.data is not None:
                    data = {k: v for k, v in snapshot.data.items() if k in query.select}
                    snapshot = Snapshot(
                        id=id, data=data, update_time=snapshot.update_time, read_time=now
                    )
                results.append(snapshot)
            return results

    def count(self, query: Query) -> int:
        with self.database.lock:
            return len(self._matching(query))

    def server_time(self, collection: str) -> datetime:
        return self.database.now()

    def listen(self, query: Query, on_update: OnUpdate, on_error: OnError) -> _Listener:
        if query.start_after is not None or query.select is not None:
            raise ValueError("A listened query has no cursor and no field selection.")
        return _Listener(self, query, on_update, on_error)

    def create(
        self,
        collection: str,
        id: str,
        data: dict[str, Any],
        *,
        timeout: float | None = None,
        unique: UniqueCreate | None = None,
    ) -> datetime | None:
        return self.database.apply([Create(collection, id, data)])

    def create_many(
        self,
        collection: str,
        documents: Sequence[tuple[str, dict[str, Any]]],
        *,
        timeout: float | None = None,
        unique: UniqueCreate | None = None,
    ) -> datetime | None:
        return self.database.apply([Create(collection, id, data) for id, data in documents])

    def update(
        self,
        collection: str,
        id: str,
        changes: dict[str, Any],
        *,
        last_update_time: datetime | None = None,
        timeout: float | None = None,
    ) -> datetime:
        with self.database.lock:
            self.database.apply([Update(collection, id, changes, last_update_time)])
            snapshot = self.database.snapshot(collection, id, self.database.now())
        assert snapshot.update_time is not None
        return snapshot.update_time

    def delete(self, collection: str, id: str, *, last_update_time: datetime | None = None) -> None:
        self.database.apply([Delete(collection, id, last_update_time)])

    def commit(self, writes: Sequence[Write]) -> datetime:
        return self.database.apply(writes)


class _Listener:
    """One listened query: diffs the result after every commit, delivers on its thread."""

    def __init__(self, ops: MemoryOps, query: Query, on_update: OnUpdate, on_error: OnError):
        self.ops = ops
        self.query = query
        self.on_update = on_update
        self.on_error = on_error
        self._last: dict[str, Snapshot] = {}
        self._initial = True
        self._done = False  #: closed or broken: nothing more is queued
        self._closed = False  #: closed: nothing more is delivered
        self._queue: queue.Queue[QueryUpdate | Exception | None] = queue.Queue()
        self._thread = threading.Thread(target=self._deliver, name="memory-listener", daemon=True)
        with ops.database.lock:
            ops.database._listeners.append(self)
            self.refresh()
        self._thread.start()

    def refresh(self) -> None:
        """Queue an update if the result changed (called with the database locked)."""
        if self._done:
            return
        database = self.ops.database
        now = database.now()
        result = [
            database.snapshot(self.query.collection, id, now)
            for id, _ in self.ops._matching(self.query)
        ]
        current = {s.id: s for s in result}
        changes = [Change("removed", old) for id, old in self._last.items() if id not in current]
        for snapshot in result:
            old = self._last.get(snapshot.id)
            if old is None:
                changes.append(Change("added", snapshot))
            elif old.update_time != snapshot.update_time:
                changes.append(Change("modified", snapshot))
        if changes or self._initial:
            self._queue.put(
                QueryUpdate(
                    documents=tuple(result),
                    changes=tuple(changes),
                    read_time=now,
                    initial=self._initial,
                )
            )
        self._initial = False
        self._last = current

    def fail(self, error: Exception) -> None:
        """Break the listener (called with the database locked)."""
        if not self._done:
            self._done = True
            self.ops.database._listeners.remove(self)
            self._queue.put(error)

    def _deliver(self) -> None:
        while True:
            item = self._queue.get()
            if item is None or self._closed:
                return
            if isinstance(item, Exception):
                self.on_error(item)
                return
            self.on_update(item)

    def close(self) -> None:
        with self.ops.database.lock:
            self._done = self._closed = True
            if self in self.ops.database._listeners:
                self.ops.database._listeners.remove(self)
        self._queue.put(None)
