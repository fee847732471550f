"""Document operations: the seam between the store's task verbs and where documents live.

``document_ops(settings)`` picks the implementation named by ``StoreSettings.store``:
``FirestoreOps`` (the default) or ``MemoryOps`` (this process's memory), wrapped in
``CountingOps`` when operation accounting is on (see ``counting``).
"""

from __future__ import annotations

from ..client import StoreSettings
from .counting import CountingOps, OpCounts, counted
from .firestore import FirestoreOps
from .memory import MemoryDatabase, MemoryOps, memory_database, reset_memory
from .protocol import (
    ASCENDING,
    DESCENDING,
    DOCUMENT_ID,
    Change,
    Create,
    Delete,
    DocumentExists,
    DocumentMissing,
    DocumentOpError,
    DocumentOps,
    Filter,
    Listening,
    OnError,
    OnUpdate,
    PreconditionFailed,
    Query,
    QueryUpdate,
    Snapshot,
    UniqueCreate,
    Update,
    Write,
)


def document_ops(settings: StoreSettings) -> DocumentOps:
    """The document operations for ``settings``' project and database."""
    if settings.in_memory:
        return counted(MemoryOps(memory_database(settings.resolved_project(), settings.database)))
    return counted(FirestoreOps(settings))


__all__ = [
    "ASCENDING",
    "DESCENDING",
    "DOCUMENT_ID",
    "Change",
    "CountingOps",
    "Create",
    "Delete",
    "DocumentExists",
    "DocumentMissing",
    "DocumentOpError",
    "DocumentOps",
    "Filter",
    "FirestoreOps",
    "Listening",
    "MemoryDatabase",
    "MemoryOps",
    "OnError",
    "OnUpdate",
    "OpCounts",
    "PreconditionFailed",
    "Query",
    "QueryUpdate",
    "Snapshot",
    "UniqueCreate",
    "Update",
    "Write",
    "document_ops",
    "memory_database",
    "reset_memory",
]
