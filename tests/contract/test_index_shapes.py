"""Queries sent to the in-memory store are checked against the index file too: their
recorded shape is the one Firestore would see for the same query."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from django_tasks_fs.emulators.firestore import FirestoreEmulator
from django_tasks_fs.store import StoreSettings
from django_tasks_fs.store.ops import (
    ASCENDING,
    DESCENDING,
    DOCUMENT_ID,
    Filter,
    FirestoreOps,
    Query,
)
from tests import index_recorder

NOW = datetime(2026, 1, 1, tzinfo=UTC)
QUERIES = [
    Query(
        collection="t_executions",
        filters=(
            Filter("status", "==", "READY"),
            Filter("backend", "==", "b"),
            Filter("queue_name", "in", ["a", "b"]),
            Filter("run_after", "<=", NOW),
        ),
        order_by=(("priority", DESCENDING), ("run_after", ASCENDING)),
        limit=10,
    ),
    Query(collection="t_executions", filters=(Filter("finished_at", "<", NOW),)),
    Query(collection="t_schedules", order_by=((DOCUMENT_ID, ASCENDING),)),
    Query(collection="elsewhere", filters=(Filter("x", "==", 1),)),
]


@pytest.mark.parametrize("query", QUERIES)
def test_memory_and_firestore_queries_have_the_same_shape(
    query: Query, firestore_emulator: FirestoreEmulator
) -> None:
    built = FirestoreOps(StoreSettings(project="shapes"))._query(query)
    expected = index_recorder.shape_of(index_recorder.original_to_protobuf(built))
    assert index_recorder.shape_of_ops_query(query) == expected
