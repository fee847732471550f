"""Record the shape of every Firestore query the test suite sends, to check the index file.

The emulator does not enforce indexes, so a query missing from
``django_tasks_fs.store.indexes`` would only fail in production. conftest.py installs
this recorder for the whole session and fails the run if any recorded query needs a
composite index the library does not declare, or filters or orders by a field the
library exempts from indexing.
"""

from __future__ import annotations

import threading
from typing import Any

from google.cloud.firestore_v1.base_query import BaseQuery

from django_tasks_fs.store.indexes import (
    ASC,
    DESC,
    QUERY_SHAPES,
    UNINDEXED_FIELDS,
    QueryShape,
    covers,
)
from django_tasks_fs.store.ops import DOCUMENT_ID, MemoryOps, Query

COLLECTIONS = ("executions", "schedule_slots", "schedules", "unique_keys", "groups")
EQUALITY_OPS = {"EQUAL", "IN"}
_recorded: set[QueryShape] = set()
_lock = threading.Lock()


def _field_filters(where: Any) -> list[Any]:
    if "composite_filter" in where:
        found: list[Any] = []
        for sub in where.composite_filter.filters:
            found += _field_filters(sub)
        return found
    if "field_filter" in where:
        return [where.field_filter]
    return []


def shape_of(query: Any) -> QueryShape | None:
    """The index-relevant shape of a StructuredQuery, or None for a non-library collection."""
    filters = [
        (f.field.field_path, f.op.name in EQUALITY_OPS)
        for f in (_field_filters(query.where) if "where" in query else [])
    ]
    order = [
        (o.field.field_path, DESC if o.direction.name == "DESCENDING" else ASC)
        for o in query.order_by
    ]
    return _shape(query.from_[0].collection_id, filters, order)


def shape_of_ops_query(query: Query) -> QueryShape | None:
    """The shape of a query sent to the in-memory store (as Firestore would need it)."""
    filters = [(f.field, f.op in ("==", "in")) for f in query.filters]
    return _shape(query.collection, filters, list(query.order_by))


def _shape(
    name: str, filters: list[tuple[str, bool]], order: list[tuple[str, str]]
) -> QueryShape | None:
    collection = next((c for c in COLLECTIONS if name.endswith(c)), None)
    if collection is None:
        return None
    equalities = {path for path, equality in filters if equality}
    inequalities = [path for path, equality in filters if not equality]
    order = [(field, direction) for field, direction in order if field != DOCUMENT_ID]
    ordered = {f for f, _ in order}
    order += [(f, ASC) for f in sorted(set(inequalities) - ordered)]
    return QueryShape(collection, frozenset(equalities), tuple(order))


#: The unpatched method, for building a query without recording it.
original_to_protobuf = BaseQuery._to_protobuf


def install() -> None:
    original = original_to_protobuf

    def recording(self: BaseQuery, *args: Any, **kwargs: Any) -> Any:
        query = original(self, *args, **kwargs)
        _record(shape_of(query))
        return query

    BaseQuery._to_protobuf = recording  # type: ignore[method-assign]

    def recorded_too(method: Any) -> Any:
        def run(self: MemoryOps, query: Query) -> Any:
            _record(shape_of_ops_query(query))
            return method(self, query)

        return run

    MemoryOps.query = recorded_too(MemoryOps.query)  # type: ignore[method-assign]
    MemoryOps.count = recorded_too(MemoryOps.count)  # type: ignore[method-assign]
    listen = MemoryOps.listen

    def recorded_listen(self: MemoryOps, query: Query, *args: Any) -> Any:
        _record(shape_of_ops_query(query))
        return listen(self, query, *args)

    MemoryOps.listen = recorded_listen  # type: ignore[method-assign]


def _record(shape: QueryShape | None) -> None:
    if shape is not None:
        with _lock:
            _recorded.add(shape)


def uncovered() -> list[QueryShape]:
    """Recorded queries that need a composite index the library does not declare."""
    with _lock:
        shapes = set(_recorded)
    return sorted(
        (
            s
            for s in shapes
            if s.needs_composite_index() and not any(covers(i, s) for i in QUERY_SHAPES)
        ),
        key=repr,
    )


def unindexed_uses() -> list[QueryShape]:
    """Recorded queries that filter or order by a field exempted from indexing."""
    with _lock:
        shapes = set(_recorded)
    return sorted((s for s in shapes if uses_unindexed(s)), key=repr)


def uses_unindexed(shape: QueryShape) -> bool:
    used = set(shape.equalities) | {f for f, _ in shape.order}
    return bool(used & UNINDEXED_FIELDS.get(shape.collection, frozenset()))


def recorded() -> set[QueryShape]:
    with _lock:
        return set(_recorded)
