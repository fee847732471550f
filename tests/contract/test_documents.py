"""One document at a time: reads, creates, conditional updates and deletes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from django_tasks_fs.store.ops import (
    DocumentExists,
    DocumentMissing,
    DocumentOps,
    PreconditionFailed,
)

C = "things"
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def test_a_missing_document_reads_as_missing(ops: DocumentOps) -> None:
    snapshot = ops.get(C, "nope")
    assert (snapshot.id, snapshot.exists, snapshot.data, snapshot.update_time) == (
        "nope",
        False,
        None,
        None,
    )
    assert snapshot.read_time.tzinfo is not None


def test_create_then_get_round_trips_the_data(ops: DocumentOps) -> None:
    when = datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
    data = {
        "s": "é",
        "n": 3,
        "f": 1.5,
        "b": True,
        "none": None,
        "t": when,
        "l": [1, "a"],
        "m": {"k": [2]},
    }
    update_time = ops.create(C, "a", data)
    snapshot = ops.get(C, "a")
    assert snapshot.data == data
    assert snapshot.update_time == update_time
    assert snapshot.read_time >= snapshot.update_time  # type: ignore[operator]


def test_create_refuses_an_existing_document(ops: DocumentOps) -> None:
    ops.create(C, "a", {"v": 1})
    with pytest.raises(DocumentExists):
        ops.create(C, "a", {"v": 2})
    assert ops.get(C, "a").data == {"v": 1}


def test_update_sets_top_level_fields_and_keeps_the_others(ops: DocumentOps) -> None:
    ops.create(C, "a", {"v": 1, "keep": "x", "m": {"a": 1, "b": 2}})
    ops.update(C, "a", {"v": 2, "m": {"c": 3}, "new": None})
    assert ops.get(C, "a").data == {"v": 2, "keep": "x", "m": {"c": 3}, "new": None}


def test_update_times_strictly_increase(ops: DocumentOps) -> None:
    times = [ops.create(C, "a", {"v": 0})]
    for value in range(1, 6):
        times.append(ops.update(C, "a", {"v": value}, last_update_time=times[-1]))
    assert times == sorted(set(times))  # type: ignore[type-var]
    assert ops.get(C, "a").update_time == times[-1]


def test_an_update_that_changes_nothing_keeps_the_update_time(ops: DocumentOps) -> None:
    created = ops.create(C, "a", {"v": 1})
    assert ops.update(C, "a", {"v": 1}, last_update_time=created) == created
    assert ops.get(C, "a").update_time == created


def test_an_unconditional_update_of_a_missing_document_is_refused(ops: DocumentOps) -> None:
    with pytest.raises(DocumentMissing):
        ops.update(C, "nope", {"v": 1})
    assert not ops.get(C, "nope").exists


def test_a_stale_precondition_fails_and_writes_nothing(ops: DocumentOps) -> None:
    first = ops.create(C, "a", {"v": 1})
    second = ops.update(C, "a", {"v": 2}, last_update_time=first)
    with pytest.raises(PreconditionFailed):
        ops.update(C, "a", {"v": 3}, last_update_time=first)
    with pytest.raises(PreconditionFailed):
        ops.update(C, "a", {"v": 3}, last_update_time=second - timedelta(microseconds=1))
    snapshot = ops.get(C, "a")
    assert (snapshot.data, snapshot.update_time) == ({"v": 2}, second)


def test_a_precondition_on_a_missing_document_fails(ops: DocumentOps) -> None:
    with pytest.raises(PreconditionFailed):
        ops.update(C, "nope", {"v": 1}, last_update_time=LONG_AGO)
    with pytest.raises(PreconditionFailed):
        ops.delete(C, "nope", last_update_time=LONG_AGO)
    assert not ops.get(C, "nope").exists


def test_delete(ops: DocumentOps) -> None:
    ops.delete(C, "nope")  # a missing document is fine
    created = ops.create(C, "a", {"v": 1})
    with pytest.raises(PreconditionFailed):
        ops.delete(C, "a", last_update_time=LONG_AGO)
    assert ops.get(C, "a").exists
    ops.delete(C, "a", last_update_time=created)
    assert not ops.get(C, "a").exists
    ops.create(C, "a", {"v": 2})  # the id is free again


def test_callers_cannot_change_stored_data(ops: DocumentOps) -> None:
    data = {"l": [1], "m": {"k": "v"}}
    ops.create(C, "a", data)
    data["l"].append(2)  # type: ignore[attr-defined]
    read = ops.get(C, "a").data
    assert read == {"l": [1], "m": {"k": "v"}}
    assert read is not None
    read["m"]["k"] = "changed"
    assert ops.get(C, "a").data == {"l": [1], "m": {"k": "v"}}


def test_get_many_keeps_the_order_asked_and_reports_missing(ops: DocumentOps) -> None:
    for id in ("a", "b", "c"):
        ops.create(C, id, {"id": id})
    snapshots = ops.get_many(C, ["c", "nope", "a"])
    assert [(s.id, s.exists) for s in snapshots] == [("c", True), ("nope", False), ("a", True)]
    assert snapshots[0].data == {"id": "c"}


def test_server_time_is_not_before_any_write(ops: DocumentOps) -> None:
    written = ops.create(C, "a", {"v": 1})
    assert written is not None
    assert ops.server_time(C) >= written
    assert abs((ops.server_time(C) - datetime.now(UTC)).total_seconds()) < 60


def test_collections_are_separate(ops: DocumentOps) -> None:
    ops.create(C, "a", {"v": 1})
    ops.create("others", "a", {"v": 2})
    assert ops.get(C, "a").data == {"v": 1}
    assert ops.get("others", "a").data == {"v": 2}
