"""The document operations on Firestore, through the official client (store.calls bounds
every request in time and names outages)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from google.api_core.exceptions import AlreadyExists, Conflict, FailedPrecondition, NotFound
from google.cloud import firestore
from google.cloud.firestore_v1.base_document import DocumentSnapshot
from google.cloud.firestore_v1.base_query import FieldFilter

from ..calls import Calls
from ..client import StoreSettings
from .create_writes import create_write
from .ordering import effective_order, sort_key
from .protocol import (
    DESCENDING,
    Change,
    ChangeKind,
    Create,
    Delete,
    Direction,
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


def _translated(exc: Exception) -> Exception:
    """Our DocumentOpError for a refusal from Firestore, else ``exc`` itself."""
    if isinstance(exc, FailedPrecondition):
        return PreconditionFailed(str(exc))
    if isinstance(exc, (AlreadyExists, Conflict)):
        return DocumentExists(str(exc))
    if isinstance(exc, NotFound):
        return DocumentMissing(str(exc))
    return exc


_REFUSALS = (FailedPrecondition, AlreadyExists, Conflict, NotFound)


class FirestoreOps:
    """``DocumentOps`` over one Firestore project and database."""

    def __init__(self, settings: StoreSettings) -> None:
        self.calls = Calls(settings)  #: every request, bounded (see store.calls)

    @property
    def client(self) -> firestore.Client:
        return self.calls.client

    def _ref(self, collection: str, id: str) -> firestore.DocumentReference:
        return self.client.collection(collection).document(id)

    def _option(self, last_update_time: datetime | None) -> Any:
        if last_update_time is None:
            return None
        return self.client.write_option(last_update_time=last_update_time)

    @staticmethod
    def _snapshot(snapshot: Any) -> Snapshot:
        return Snapshot(
            id=snapshot.id,
            data=snapshot.to_dict() if snapshot.exists else None,
            update_time=snapshot.update_time if snapshot.exists else None,
            read_time=snapshot.read_time,
        )

    # -- reads -------------------------------------------------------------------------

    def get(self, collection: str, id: str, *, timeout: float | None = None) -> Snapshot:
        return self._snapshot(self.calls.get(self._ref(collection, id), timeout=timeout))

    def get_many(self, collection: str, ids: Sequence[str]) -> list[Snapshot]:
        found = {
            s.id: self._snapshot(s)
            for s in self.calls.get_all([self._ref(collection, i) for i in dict.fromkeys(ids)])
        }
        return [found[i] for i in ids if i in found]

    def _query(self, query: Query) -> Any:
        built: Any = self.client.collection(query.collection)
        for f in query.filters:
            built = built.where(filter=FieldFilter(f.field, f.op, f.value))
        for field, direction in query.order_by:
            order = firestore.Query.DESCENDING if direction == DESCENDING else "ASCENDING"
            built = built.order_by(field, direction=order)
        if query.start_after is not None:
            cursor = query.start_after
            built = built.start_after(
                DocumentSnapshot(
                    self._ref(query.collection, cursor.id),
                    cursor.data,
                    cursor.exists,
                    cursor.read_time,
                    None,
                    cursor.update_time,
                )
            )
        if query.select is not None:
            built = built.select(list(query.select))
        if query.limit is not None:
            built = built.limit(query.limit)
        return built

    def query(self, query: Query) -> list[Snapshot]:
        return [self._snapshot(s) for s in self.calls.stream(self._query(query))]

    def count(self, query: Query) -> int:
        return self.calls.count(self._query(query))

    def server_time(self, collection: str) -> datetime:
        return self.calls.server_time(collection)

    def listen(self, query: Query, on_update: OnUpdate, on_error: OnError) -> _Listener:
        if query.start_after is not None or query.select is not None:
            raise ValueError("A listened query has no cursor and no field selection.")
        return _Listener(self._query(query), effective_order(query), on_update, on_error)

    # -- writes ------------------------------------------------------------------------

    def create(
        self,
        collection: str,
        id: str,
        data: dict[str, Any],
        *,
        timeout: float | None = None,
        unique: UniqueCreate | None = None,
    ) -> datetime | None:
        ref = self._ref(collection, id)
        try:
            if unique is not None:
                return self.calls.create_unique(
                    ref, data, timeout=timeout, subject=unique.subject, verb=unique.verb
                )
            return self.calls.create(ref, data)
        except _REFUSALS as exc:
            raise _translated(exc) from exc

    def create_many(
        self,
        collection: str,
        documents: Sequence[tuple[str, dict[str, Any]]],
        *,
        timeout: float | None = None,
        unique: UniqueCreate | None = None,
    ) -> datetime | None:
        check_distinct([Create(collection, id, data) for id, data in documents])
        refs = [self._ref(collection, id) for id, _ in documents]
        # Encoded once, not again by each try's batch.create(): see create_writes.
        writes = [
            create_write(ref._document_path, data)
            for ref, (_, data) in zip(refs, documents, strict=True)
        ]

        def build() -> Any:
            batch = self.client.batch()
            batch._add_write_pbs(writes)
            return batch

        try:
            if unique is not None:
                return self.calls.commit_unique(
                    build, refs[0], timeout=timeout, subject=unique.subject, verb=unique.verb
                )
            return self.calls.commit(build())
        except _REFUSALS as exc:
            raise _translated(exc) from exc

    def update(
        self,
        collection: str,
        id: str,
        changes: dict[str, Any],
        *,
        last_update_time: datetime | None = None,
        timeout: float | None = None,
    ) -> datetime:
        ref = self._ref(collection, id)
        try:
            result = self.calls.update(
                ref, changes, option=self._option(last_update_time), timeout=timeout
            )
        except _REFUSALS as exc:
            raise _translated(exc) from exc
        update_time: datetime = result.update_time
        return update_time

    def delete(self, collection: str, id: str, *, last_update_time: datetime | None = None) -> None:
        try:
            self.calls.delete(self._ref(collection, id), option=self._option(last_update_time))
        except _REFUSALS as exc:
            raise _translated(exc) from exc

    def commit(self, writes: Sequence[Write]) -> datetime:
        check_distinct(writes)
        batch = self.client.batch()
        for write in writes:
            ref = self._ref(write.collection, write.id)
            if isinstance(write, Create):
                batch.create(ref, write.data)
            elif isinstance(write, Update):
                batch.update(ref, write.changes, option=self._option(write.last_update_time))
            elif isinstance(write, Delete):
                batch.delete(ref, option=self._option(write.last_update_time))
        try:
            return self.calls.commit(batch)
        except _REFUSALS as exc:
            raise _translated(exc) from exc


logger = logging.getLogger(__name__)

_KINDS: dict[str, ChangeKind] = {"ADDED": "added", "MODIFIED": "modified", "REMOVED": "removed"}


class _Listener:
    """A Firestore Watch (``Query.on_snapshot``) that stops at its first stream error.

    The documents of each update are sorted here (by ``store.ops.ordering``, as the
    in-memory store sorts them): the client's own sort treats descending orders as
    ascending.

        The client's Watch reopens a failed stream at once, again and again (no backoff:
        a busy loop while Firestore is unreachable), and on a fatal error raises in a
        thread of its own (a traceback on stderr). Here the first error is reported to
        ``on_error``, the stream ends quietly and the Watch is closed; the caller listens
        again when Firestore answers (and polls meanwhile). This reaches into the client's
        Watch (``_rpc``): checked by tests/contract on the pinned client version.
    """

    def __init__(
        self,
        query: Any,
        order: tuple[tuple[str, Direction], ...],
        on_update: OnUpdate,
        on_error: OnError,
    ) -> None:
        self._order = order
        self._on_update = on_update
        self._on_error = on_error
        self._lock = threading.Lock()
        self._initial = True
        self._stopped = False  #: closed or broken: nothing more is delivered
        self._watch = query.on_snapshot(self._deliver)
        try:
            self._hook(self._watch._rpc)
        except AttributeError:  # another client version: its own retries, and tracebacks
            logger.warning(
                "this google-cloud-firestore's Watch has no _rpc hooks; a broken listener "
                "will be retried by the client itself"
            )

    def _hook(self, rpc: Any) -> None:
        """Report the stream's first error, and let it end (see the class docstring)."""
        recover, terminate = rpc._should_recover, rpc._should_terminate

        def should_terminate(exc: Exception) -> bool:
            return self._stopped or bool(terminate(exc))

        def should_recover(exc: Exception) -> bool:
            self._broken(exc)
            return bool(recover(exc))  # the stream's next failure ends it (should_terminate)

        def done(future: Any) -> None:
            if future is not None:
                self._broken(future)

        rpc._should_terminate = should_terminate
        rpc._should_recover = should_recover
        # Not the Watch's own end-of-stream callback: it raises on a thread.
        rpc._callbacks = [done]

    def _deliver(self, docs: list[Any], changes: list[Any], read_time: Any) -> None:
        try:
            with self._lock:
                if self._stopped:
                    return
                initial, self._initial = self._initial, False
            documents = [FirestoreOps._snapshot(d) for d in docs]
            # Sorted here: the client's own order ignores descending orderings.
            documents.sort(key=lambda s: sort_key(s.id, s.data or {}, self._order) or ())
            update = QueryUpdate(
                documents=tuple(documents),
                changes=tuple(
                    Change(_KINDS[c.type.name], FirestoreOps._snapshot(c.document)) for c in changes
                ),
                read_time=_datetime(read_time),
                initial=initial,
            )
            self._on_update(update)
        except Exception as exc:  # never into the client's thread (it would log a traceback)
            logger.debug("listener update not delivered", exc_info=True)
            self._broken(exc)

    def _broken(self, exc: Any) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._on_error(exc if isinstance(exc, Exception) else RuntimeError(repr(exc)))
        threading.Thread(target=self._close_watch, name="listener-close", daemon=True).start()

    def _close_watch(self) -> None:
        try:
            self._watch.close()
        except Exception:  # closing a broken stream: nothing left to do
            logger.debug("closing a broken listener failed", exc_info=True)

    def close(self) -> None:
        with self._lock:
            self._stopped = True
        self._close_watch()


def _datetime(value: Any) -> datetime:
    """A read time from the Watch (a protobuf Timestamp or a datetime) as a datetime."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if hasattr(value, "ToDatetime"):
        converted: datetime = value.ToDatetime(tzinfo=UTC)
        return converted
    return datetime.now(UTC)
