"""The document operations the store is built on, and what they raise.

A small interface above the Firestore client (as procrastinate's connector sits under
its job manager): reads return a ``Snapshot``, writes return the server's commit time,
and a write whose precondition fails raises ``PreconditionFailed``. Two implementations
keep the same semantics, proven by tests/contract: ``FirestoreOps`` (the official client)
and ``MemoryOps`` (one process's memory, for fast tests).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

#: Order by a document's id (Firestore's ``__name__``).
DOCUMENT_ID = "__name__"
ASCENDING: Literal["ASCENDING"] = "ASCENDING"
DESCENDING: Literal["DESCENDING"] = "DESCENDING"

Direction = Literal["ASCENDING", "DESCENDING"]
#: The comparison operators the store's queries use.
Operator = Literal["==", "in", "<", "<=", ">", ">="]


class DocumentOpError(Exception):
    """A document operation was refused; the subclass says why. Nothing was written."""


class PreconditionFailed(DocumentOpError):
    """The document's update time is not the one required (it changed, or is gone)."""


class DocumentExists(DocumentOpError):
    """A create found the document already there."""


class DocumentMissing(DocumentOpError):
    """An unconditional update found no document."""


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Snapshot:
    """One document as read: its data (None when missing) and times."""

    id: str
    data: dict[str, Any] | None  #: a copy; None when the document does not exist
    update_time: datetime | None  #: None when the document does not exist
    read_time: datetime  #: the server's time of the read

    @property
    def exists(self) -> bool:
        return self.data is not None


@dataclass(frozen=True, slots=True)
class Create:
    """Create a document; DocumentExists if it is there."""

    collection: str
    id: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Update:
    """Set top-level fields of a document.

    With ``last_update_time``: PreconditionFailed unless the document exists with
    exactly that update time. Without: DocumentMissing if there is no document.
    """

    collection: str
    id: str
    changes: dict[str, Any]
    last_update_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class Delete:
    """Delete a document (a missing one is fine), conditionally like ``Update``."""

    collection: str
    id: str
    last_update_time: datetime | None = None


Write = Create | Update | Delete


def check_distinct(writes: Sequence[Write]) -> None:
    """Raise ValueError if a batch writes one document twice (Firestore refuses some
    such batches; the store never sends one)."""
    seen: set[tuple[str, str]] = set()
    for write in writes:
        key = (write.collection, write.id)
        if key in seen:
            raise ValueError(f"A batch may write each document once: {key[0]}/{key[1]}.")
        seen.add(key)


@dataclass(frozen=True, slots=True)
class Filter:
    """``field op value``; inequalities match only values of the same type, as in Firestore."""

    field: str
    op: Operator
    value: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Query:
    """A query of one collection, in Firestore's terms.

    Results are ordered by ``order_by``, then by any inequality field not ordered on
    (ascending), then by document id in the direction of the last ordering. Documents
    lacking an ordered field are left out; null sorts first.
    """

    collection: str
    filters: tuple[Filter, ...] = ()
    order_by: tuple[tuple[str, Direction], ...] = ()
    limit: int | None = None
    start_after: Snapshot | None = None  #: resume after this document (a cursor)
    select: tuple[str, ...] | None = None  #: return only these fields


@dataclass(frozen=True, slots=True)
class UniqueCreate:
    """A create whose id is random and used by no other write: an unreachable server
    is retried until the timeout, and ALREADY_EXISTS after an attempt that may have
    been applied is success. ``subject``/``verb`` word the outage message."""

    subject: str = "the document"
    verb: str = "written"


ChangeKind = Literal["added", "modified", "removed"]


@dataclass(frozen=True, slots=True)
class Change:
    """One document entering, changing in, or leaving a listened query's result."""

    kind: ChangeKind
    snapshot: Snapshot  #: for "removed": the document as it was last in the result


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryUpdate:
    """A listened query's result now, and what changed since the previous update.

    The first update carries the whole result as "added" (Firestore bills it as a query);
    each later one only the documents that entered, changed or left (each billed a read).
    """

    documents: tuple[Snapshot, ...]  #: the whole result, in the query's order
    changes: tuple[Change, ...]
    read_time: datetime
    initial: bool = False  #: the first update of this listener


class Listening(Protocol):
    """A live listener (``DocumentOps.listen``); ``close()`` stops it (idempotent)."""

    def close(self) -> None: ...


#: Receives each update of a listened query, on a thread of the store's.
OnUpdate = Callable[[QueryUpdate], None]
#: Told once that the listener broke (unreachable server...): nothing more is delivered.
OnError = Callable[[Exception], None]


class DocumentOps(Protocol):
    """Reads and writes of the documents of one Firestore project and database."""

    def get(self, collection: str, id: str, *, timeout: float | None = None) -> Snapshot:
        """Read one document (a snapshot whose ``exists`` is False if there is none)."""

    def get_many(self, collection: str, ids: Sequence[str]) -> list[Snapshot]:
        """Read several documents in one round trip, in the order of ``ids``."""

    def create(
        self,
        collection: str,
        id: str,
        data: dict[str, Any],
        *,
        timeout: float | None = None,
        unique: UniqueCreate | None = None,
    ) -> datetime | None:
        """Create a document; return its update time (None: applied, time unknown)."""

    def create_many(
        self,
        collection: str,
        documents: Sequence[tuple[str, dict[str, Any]]],
        *,
        timeout: float | None = None,
        unique: UniqueCreate | None = None,
    ) -> datetime | None:
        """Create several documents, (id, data) pairs, in one atomic batch: all or none
        (DocumentExists if one is there); return the commit time (None: applied, time
        unknown). ``timeout`` and ``unique`` as for ``create``, for the whole batch."""

    def update(
        self,
        collection: str,
        id: str,
        changes: dict[str, Any],
        *,
        last_update_time: datetime | None = None,
        timeout: float | None = None,
    ) -> datetime:
        """Apply ``Update``; return the document's update time."""

    def delete(self, collection: str, id: str, *, last_update_time: datetime | None = None) -> None:
        """Apply ``Delete``."""

    def commit(self, writes: Sequence[Write]) -> datetime:
        """Apply every write or none (one atomic batch); return the commit time,
        which is the update time of every document it changed."""

    def query(self, query: Query) -> list[Snapshot]:
        """The documents matching ``query``."""

    def count(self, query: Query) -> int:
        """How many documents match ``query`` (at most its limit): an aggregation."""

    def server_time(self, collection: str) -> datetime:
        """The server's current time."""

    def listen(self, query: Query, on_update: OnUpdate, on_error: OnError) -> Listening:
        """Follow ``query``'s result: ``on_update`` with the result at once, then after
        every change, until ``close()``; ``on_error`` once if the listener breaks, after
        which nothing more is delivered (close it and listen again). Both are called on
        another thread, one call at a time; ``start_after`` and ``select`` are not
        supported."""
