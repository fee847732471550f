"""Queries: filters, Firestore's value ordering, ties by id, cursors, limits, counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from django_tasks_fs.store.ops import (
    ASCENDING,
    DESCENDING,
    DOCUMENT_ID,
    DocumentOps,
    Filter,
    Query,
)

C = "things"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def ids(ops: DocumentOps, **query: object) -> list[str]:
    return [s.id for s in ops.query(Query(collection=C, **query))]  # type: ignore[arg-type]


@pytest.fixture
def things(ops: DocumentOps) -> DocumentOps:
    rows = {
        "d": {"kind": "x", "rank": 1, "at": T0 + timedelta(seconds=3), "tag": "b"},
        "a": {"kind": "x", "rank": 2, "at": T0 + timedelta(seconds=1), "tag": "a"},
        "c": {"kind": "x", "rank": 1, "at": T0 + timedelta(seconds=2), "tag": None},
        "b": {"kind": "y", "rank": 1, "at": None, "tag": "c"},
        "e": {"kind": "x", "rank": 2.5, "at": T0, "tag": 5},
        "f": {"kind": "z"},
    }
    for id, data in rows.items():
        ops.create(C, id, data)
    ops.create("elsewhere", "zz", {"kind": "x", "rank": 1})
    return ops


def test_equality_and_in(things: DocumentOps) -> None:
    assert ids(things, filters=(Filter("kind", "==", "x"),)) == ["a", "c", "d", "e"]
    assert ids(things, filters=(Filter("kind", "in", ["y", "z"]),)) == ["b", "f"]
    assert ids(things, filters=(Filter("tag", "==", None),)) == ["c"]
    assert ids(things, filters=(Filter("rank", "==", 2),)) == ["a"]  # 2 == 2.0, not 2.5
    assert ids(things, filters=(Filter("kind", "==", "x"), Filter("rank", "==", 1))) == ["c", "d"]


def test_ordering_breaks_ties_by_id_in_the_direction_of_the_last_order(
    things: DocumentOps,
) -> None:
    x = (Filter("kind", "==", "x"),)
    assert ids(things, filters=x, order_by=(("rank", ASCENDING),)) == ["c", "d", "a", "e"]
    assert ids(things, filters=x, order_by=(("rank", DESCENDING),)) == ["e", "a", "d", "c"]
    assert ids(things, filters=x, order_by=(("rank", DESCENDING), ("at", ASCENDING))) == [
        "e",
        "a",
        "c",
        "d",
    ]
    assert ids(things, order_by=((DOCUMENT_ID, ASCENDING),)) == ["a", "b", "c", "d", "e", "f"]


def test_ordering_leaves_out_documents_without_the_field_and_puts_null_first(
    things: DocumentOps,
) -> None:
    assert ids(things, order_by=(("at", ASCENDING),)) == ["b", "e", "a", "c", "d"]
    # Mixed types order by type: null, numbers, strings.
    assert ids(things, order_by=(("tag", ASCENDING),)) == ["c", "e", "a", "d", "b"]


def test_inequalities_match_only_values_of_the_same_type(things: DocumentOps) -> None:
    before = (Filter("at", "<=", T0 + timedelta(seconds=2)),)
    assert ids(things, filters=before, order_by=(("at", ASCENDING),)) == ["e", "a", "c"]
    assert ids(things, filters=before) == ["e", "a", "c"]  # implicitly ordered by the field
    assert ids(things, filters=(Filter("tag", ">", "a"),)) == ["d", "b"]
    assert ids(things, filters=(Filter("rank", "<", 2),)) == ["b", "c", "d"]
    assert ids(things, filters=(Filter("rank", ">=", 2),), order_by=(("rank", DESCENDING),)) == [
        "e",
        "a",
    ]
    assert (
        ids(things, filters=(Filter("at", "<", T0 + timedelta(days=1)), Filter("kind", "==", "y")))
        == []
    )


def test_limit_and_cursor_pages_through_ties(things: DocumentOps) -> None:
    order = (("rank", ASCENDING),)
    seen: list[str] = []
    after = None
    while True:
        page = things.query(Query(collection=C, order_by=order, limit=2, start_after=after))
        seen += [s.id for s in page]
        if len(page) < 2:
            break
        after = page[-1]
    assert seen == ["b", "c", "d", "a", "e"]
    cursor = things.get(C, "d")
    assert ids(things, order_by=(("rank", DESCENDING),), start_after=cursor) == ["c", "b"]


def test_select_returns_only_the_named_fields(things: DocumentOps) -> None:
    (found,) = things.query(
        Query(collection=C, filters=(Filter("kind", "==", "y"),), select=("rank",))
    )
    assert (found.id, found.data) == ("b", {"rank": 1})


def test_count_is_bounded_by_the_limit(things: DocumentOps) -> None:
    assert things.count(Query(collection=C)) == 6
    assert things.count(Query(collection=C, filters=(Filter("kind", "==", "x"),))) == 4
    assert things.count(Query(collection=C, filters=(Filter("kind", "==", "x"),), limit=3)) == 3
    assert things.count(Query(collection=C, filters=(Filter("kind", "==", "none"),))) == 0
