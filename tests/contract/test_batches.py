"""Batched commits: all of the writes, with one commit time, or none of them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from django_tasks_fs.store.ops import (
    Create,
    Delete,
    DocumentExists,
    DocumentMissing,
    DocumentOps,
    PreconditionFailed,
    UniqueCreate,
    Update,
)

C = "things"
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def test_a_batch_applies_every_write_with_one_commit_time(ops: DocumentOps) -> None:
    a = ops.create(C, "a", {"v": 1})
    ops.create(C, "gone", {"v": 1})
    commit_time = ops.commit(
        [
            Create(C, "new", {"v": 1}),
            Update(C, "a", {"v": 2}, last_update_time=a),
            Delete(C, "gone"),
        ]
    )
    assert a is not None
    assert commit_time > a
    assert ops.get(C, "new").update_time == commit_time
    assert ops.get(C, "a").update_time == commit_time
    assert ops.get(C, "a").data == {"v": 2}
    assert not ops.get(C, "gone").exists


def _unchanged(ops: DocumentOps) -> None:
    assert not ops.get(C, "new").exists
    assert ops.get(C, "a").data == {"v": 1}
    assert ops.get(C, "b").data == {"v": 1}


@pytest.mark.parametrize(
    ("failing", "error"),
    [
        (Create(C, "b", {"v": 9}), DocumentExists),
        (Update(C, "b", {"v": 9}, last_update_time=LONG_AGO), PreconditionFailed),
        (Update(C, "nope", {"v": 9}, last_update_time=LONG_AGO), PreconditionFailed),
        (Update(C, "nope", {"v": 9}), DocumentMissing),
        (Delete(C, "b", last_update_time=LONG_AGO), PreconditionFailed),
    ],
)
def test_one_refused_write_leaves_everything_unwritten(
    ops: DocumentOps, failing: Create | Update | Delete, error: type[Exception]
) -> None:
    ops.create(C, "a", {"v": 1})
    ops.create(C, "b", {"v": 1})
    for writes in (
        [Create(C, "new", {"v": 1}), Update(C, "a", {"v": 2}), failing],
        [failing, Create(C, "new", {"v": 1})],
    ):
        with pytest.raises(error):
            ops.commit(writes)
        _unchanged(ops)


def test_a_batch_may_write_each_document_once(ops: DocumentOps) -> None:
    ops.create(C, "a", {"v": 1})
    with pytest.raises(ValueError, match="once"):
        ops.commit([Update(C, "a", {"v": 2}), Create(C, "a", {"v": 3})])
    assert ops.get(C, "a").data == {"v": 1}


def test_create_many_writes_every_document_with_one_commit_time(ops: DocumentOps) -> None:
    commit_time = ops.create_many(C, [("x", {"v": 1}), ("y", {"v": 2})])
    assert commit_time is not None
    assert [ops.get(C, i).update_time for i in ("x", "y")] == [commit_time, commit_time]
    assert ops.get(C, "y").data == {"v": 2}


@pytest.mark.parametrize("unique", [None, UniqueCreate()])
def test_create_many_creates_only_if_absent_all_or_nothing(
    ops: DocumentOps, unique: UniqueCreate | None
) -> None:
    ops.create(C, "b", {"v": 1})
    with pytest.raises(DocumentExists):
        ops.create_many(C, [("new", {"v": 1}), ("b", {"v": 9})], unique=unique)
    assert not ops.get(C, "new").exists
    assert ops.get(C, "b").data == {"v": 1}


def test_a_commit_may_hold_more_than_500_writes(ops: DocumentOps) -> None:
    # Firestore's old cap of 500 writes per commit is gone (its 10 MiB request limit
    # remains); the store still commits at most 500 at a time (MAX_BATCH_WRITES).
    ops.create_many(C, [(f"d{i}", {"v": i}) for i in range(501)])
    assert ops.get(C, "d500").data == {"v": 500}
