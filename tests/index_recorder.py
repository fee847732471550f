"""Record the shape of every Firestore query the test suite sends, to check the index file.

The emulator does not enforce composite indexes, so a query missing from
``django_tasks_fs.store.indexes`` would only fail in production. conftest.py installs
this recorder for the whole session and fails the run if any recorded query needs an
index the library does not declare.
"""

from __future__ import annotations

import threading
from typing import Any

from google.cloud.firestore_v1.base_query import BaseQuery

from django_tasks_fs.store.indexes import ASC, DESC, QUERY_SHAPES, QueryShape, covers

COLLECTIONS = ("executions", "schedule_slots", "schedules")
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
    name = query.from_[0].collection_id
    collection = next((c for c in COLLECTIONS if name.endswith(c)), None)
    if collection is None:
        return None
    equalities: set[str] = set()
    inequalities: list[str] = []
    for field_filter in _field_filters(query.where) if "where" in query else []:
        path = field_filter.field.field_path
        if field_filter.op.name in EQUALITY_OPS:
            equalities.add(path)
        else:
            inequalities.append(path)
    order = [
        (o.field.field_path, DESC if o.direction.name == "DESCENDING" else ASC)
        for o in query.order_by
        if o.field.field_path != "__name__"
    ]
    ordered = {f for f, _ in order}
    order += [(f, ASC) for f in sorted(set(inequalities) - ordered)]
    return QueryShape(collection, frozenset(equalities), tuple(order))


#: The unpatched method, for building a query without recording it.
original_to_protobuf = BaseQuery._to_protobuf


def install() -> None:
    original = original_to_protobuf

    def recording(self: BaseQuery, *args: Any, **kwargs: Any) -> Any:
        query = original(self, *args, **kwargs)
        shape = shape_of(query)
        if shape is not None:
            with _lock:
                _recorded.add(shape)
        return query

    BaseQuery._to_protobuf = recording  # type: ignore[method-assign]


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


def recorded() -> set[QueryShape]:
    with _lock:
        return set(_recorded)
