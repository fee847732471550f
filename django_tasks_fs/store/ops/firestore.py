"""The document operations on Firestore, through the official client (store.calls bounds
every request in time and names outages)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from google.api_core.exceptions import AlreadyExists, Conflict, FailedPrecondition, NotFound
from google.cloud import firestore
from google.cloud.firestore_v1.base_document import DocumentSnapshot
from google.cloud.firestore_v1.base_query import FieldFilter

from ..calls import Calls
from ..client import StoreSettings
from .protocol import (
    DESCENDING,
    Create,
    Delete,
    DocumentExists,
    DocumentMissing,
    PreconditionFailed,
    Query,
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
        refs = [(self._ref(collection, id), data) for id, data in documents]

        def build() -> Any:
            batch = self.client.batch()
            for ref, data in refs:
                batch.create(ref, data)
            return batch

        try:
            if unique is not None:
                return self.calls.commit_unique(
                    build, refs[0][0], timeout=timeout, subject=unique.subject, verb=unique.verb
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
