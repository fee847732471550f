"""Listeners (``DocumentOps.listen``): the first result, then each document that enters,
changes in or leaves the result, in the query's order; nothing after ``close()``."""

from __future__ import annotations

import queue
import threading

import pytest

from django_tasks_fs.store.ops import (
    ASCENDING,
    DESCENDING,
    CountingOps,
    DocumentOps,
    Filter,
    OpCounts,
    Query,
    QueryUpdate,
)

C = "watched"
#: Long enough for the emulator to deliver; the tests never wait for it when they pass.
WAIT = 10.0


class Updates:
    """The updates and errors a listener delivers, taken in order."""

    def __init__(self) -> None:
        self.items: queue.Queue[QueryUpdate | Exception] = queue.Queue()
        self.threads: set[str] = set()

    def update(self, update: QueryUpdate) -> None:
        self.threads.add(threading.current_thread().name)
        self.items.put(update)

    def error(self, error: Exception) -> None:
        self.items.put(error)

    def next(self) -> QueryUpdate:
        item = self.items.get(timeout=WAIT)
        assert isinstance(item, QueryUpdate), item
        return item

    def changes(self) -> list[tuple[str, str]]:
        return [(c.kind, c.snapshot.id) for c in self.next().changes]


def ready(limit: int | None = None) -> Query:
    return Query(
        collection=C,
        filters=(Filter("status", "==", "READY"),),
        order_by=(("priority", DESCENDING), ("n", ASCENDING)),
        limit=limit,
    )


def put(ops: DocumentOps, id: str, n: int, priority: int = 0, status: str = "READY") -> None:
    ops.create(C, id, {"status": status, "priority": priority, "n": n})


def test_the_first_update_is_the_whole_result_in_order(ops: DocumentOps) -> None:
    put(ops, "b", 2)
    put(ops, "a", 1)
    put(ops, "hi", 9, priority=5)
    put(ops, "done", 0, status="SUCCESSFUL")
    updates = Updates()
    listener = ops.listen(ready(), updates.update, updates.error)
    try:
        first = updates.next()
        assert first.initial
        assert [s.id for s in first.documents] == ["hi", "a", "b"]
        assert sorted((c.kind, c.snapshot.id) for c in first.changes) == [
            ("added", "a"),
            ("added", "b"),
            ("added", "hi"),
        ]
        assert first.documents[0].data == {"status": "READY", "priority": 5, "n": 9}
        assert first.documents[0].update_time is not None
        assert threading.current_thread().name not in updates.threads
    finally:
        listener.close()


def test_an_empty_result_is_delivered_too(ops: DocumentOps) -> None:
    updates = Updates()
    listener = ops.listen(ready(), updates.update, updates.error)
    try:
        first = updates.next()
        assert first.initial
        assert first.documents == ()
        assert first.changes == ()
        put(ops, "a", 1)
        second = updates.next()
        assert not second.initial
        assert [(c.kind, c.snapshot.id) for c in second.changes] == [("added", "a")]
    finally:
        listener.close()


def test_additions_modifications_and_removals(ops: DocumentOps) -> None:
    put(ops, "a", 1)
    updates = Updates()
    listener = ops.listen(ready(), updates.update, updates.error)
    try:
        updates.next()
        put(ops, "b", 2)
        assert updates.changes() == [("added", "b")]
        ops.update(C, "b", {"n": 0})  # still matches, now first
        update = updates.next()
        assert [(c.kind, c.snapshot.id) for c in update.changes] == [("modified", "b")]
        assert [s.id for s in update.documents] == ["b", "a"]
        assert update.changes[0].snapshot.data == {"status": "READY", "priority": 0, "n": 0}
        ops.update(C, "a", {"status": "RUNNING"})  # leaves the result
        update = updates.next()
        assert [(c.kind, c.snapshot.id) for c in update.changes] == [("removed", "a")]
        assert [s.id for s in update.documents] == ["b"]
        ops.delete(C, "b")
        assert updates.changes() == [("removed", "b")]
        put(ops, "other", 1, status="FAILED")  # never in the result: nothing delivered
        put(ops, "c", 3)
        assert updates.changes() == [("added", "c")]
    finally:
        listener.close()


def test_a_limited_result_fills_up_when_a_document_leaves(ops: DocumentOps) -> None:
    for n in range(4):
        put(ops, f"d{n}", n)
    updates = Updates()
    listener = ops.listen(ready(limit=2), updates.update, updates.error)
    try:
        assert [s.id for s in updates.next().documents] == ["d0", "d1"]
        ops.update(C, "d0", {"status": "RUNNING"})
        update = updates.next()
        assert sorted((c.kind, c.snapshot.id) for c in update.changes) == [
            ("added", "d2"),
            ("removed", "d0"),
        ]
        assert [s.id for s in update.documents] == ["d1", "d2"]
        put(ops, "urgent", 9, priority=1)  # pushes d2 out
        update = updates.next()
        assert sorted((c.kind, c.snapshot.id) for c in update.changes) == [
            ("added", "urgent"),
            ("removed", "d2"),
        ]
        assert [s.id for s in update.documents] == ["urgent", "d1"]
    finally:
        listener.close()


def test_nothing_is_delivered_after_close(ops: DocumentOps) -> None:
    updates = Updates()
    listener = ops.listen(ready(), updates.update, updates.error)
    updates.next()
    listener.close()
    listener.close()  # idempotent
    put(ops, "a", 1)
    marker = Updates()
    second = ops.listen(ready(), marker.update, marker.error)
    try:
        assert [s.id for s in marker.next().documents] == ["a"]  # the write is visible...
    finally:
        second.close()
    assert updates.items.empty()  # ...but the closed listener got nothing


def test_listened_documents_are_counted_as_firestore_bills_them(ops: DocumentOps) -> None:
    put(ops, "a", 1)
    counts = OpCounts()
    counting = CountingOps(ops, counts)
    updates = Updates()
    listener = counting.listen(ready(), updates.update, updates.error)
    try:
        updates.next()
        put(ops, "b", 2)
        updates.next()
        ops.update(C, "a", {"status": "RUNNING"})
        updates.next()
    finally:
        listener.close()
    assert counts.as_dict() == {
        **OpCounts().as_dict(),
        "reads": 3,  # a (first result), b added, a removed
        "billed_reads": 3,
        "listens": 1,
        "rpcs": 1,
    }
    empty = OpCounts()
    listener = CountingOps(ops, empty).listen(
        Query(collection="nothing-here"), updates.update, updates.error
    )
    try:
        updates.next()
    finally:
        listener.close()
    assert (empty.reads, empty.billed_reads, empty.listens) == (0, 1, 1)


def test_a_cursor_or_a_selection_cannot_be_listened_to(ops: DocumentOps) -> None:
    with pytest.raises(ValueError, match="cursor"):
        ops.listen(Query(collection=C, select=("n",)), print, print)
