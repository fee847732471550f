"""Firestore's value ordering, filters and query order, for the in-memory documents.

Firestore orders values by type first (null < booleans < numbers < timestamps <
strings < bytes < arrays < maps), then by value; ints and floats compare as numbers;
strings by their UTF-8 bytes. An inequality filter only matches values of the filter
value's type; an ordered field that is absent leaves the document out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import total_ordering
from typing import Any

from .protocol import ASCENDING, DESCENDING, DOCUMENT_ID, Direction, Filter, Query

_MISSING = object()


def value_key(value: Any) -> tuple[Any, ...]:
    """A sort key that orders values as Firestore does."""
    if value is None:
        return (0,)
    if isinstance(value, bool):
        return (1, value)
    if isinstance(value, (int, float)):
        if isinstance(value, float) and math.isnan(value):
            return (2, 0, 0.0)  # NaN sorts before every other number
        return (2, 1, value)
    if isinstance(value, datetime):
        return (3, value if value.tzinfo else value.replace(tzinfo=UTC))
    if isinstance(value, str):
        return (4, value.encode("utf-8", "surrogatepass"))
    if isinstance(value, bytes):
        return (5, value)
    if isinstance(value, (list, tuple)):
        return (8, tuple(value_key(v) for v in value))
    if isinstance(value, dict):
        return (
            9,
            tuple(
                (k.encode("utf-8", "surrogatepass"), value_key(v)) for k, v in sorted(value.items())
            ),
        )
    raise TypeError(f"Cannot store a value of type {type(value).__name__} in a document.")


def field_value(document_id: str, data: dict[str, Any], field: str) -> Any:
    """The value of a top-level field, the id for ``__name__``, or _MISSING."""
    if field == DOCUMENT_ID:
        return document_id
    return data.get(field, _MISSING)


def matches(document_id: str, data: dict[str, Any], filters: Sequence[Filter]) -> bool:
    """Does the document pass every filter?"""
    for f in filters:
        value = field_value(document_id, data, f.field)
        if value is _MISSING:
            return False
        key = value_key(value)
        if f.op == "==":
            ok = key == value_key(f.value)
        elif f.op == "in":
            ok = any(key == value_key(v) for v in f.value)
        else:
            bound = value_key(f.value)
            if key[0] != bound[0] or (key[0] == 2 and 0 in (key[1], bound[1])):
                return False  # another type (or NaN): an inequality never matches it
            ok = _COMPARE[f.op](key, bound)
        if not ok:
            return False
    return True


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


@total_ordering
class _Descending:
    """Inverts the order of a key component."""

    __slots__ = ("key",)

    def __init__(self, key: tuple[Any, ...]) -> None:
        self.key = key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Descending) and self.key == other.key

    def __lt__(self, other: _Descending) -> bool:
        return self.key > other.key

    def __hash__(self) -> int:
        return hash(self.key)


def effective_order(query: Query) -> tuple[tuple[str, Direction], ...]:
    """The full order Firestore applies: explicit, unordered inequality fields, then id."""
    order = list(query.order_by)
    ordered = {f for f, _ in order}
    inequalities = {f.field for f in query.filters if f.op not in ("==", "in")}
    order += [(f, ASCENDING) for f in sorted(inequalities - ordered)]
    if DOCUMENT_ID not in {f for f, _ in order}:
        order.append((DOCUMENT_ID, order[-1][1] if order else ASCENDING))
    return tuple(order)


def sort_key(
    document_id: str, data: dict[str, Any], order: Sequence[tuple[str, Direction]]
) -> tuple[Any, ...] | None:
    """The document's position in ``order``, or None if it lacks an ordered field."""
    parts: list[Any] = []
    for field, direction in order:
        value = field_value(document_id, data, field)
        if value is _MISSING:
            return None
        key = value_key(value)
        parts.append(_Descending(key) if direction == DESCENDING else key)
    return tuple(parts)
