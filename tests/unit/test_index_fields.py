"""Every stored field is either queried (indexed) or exempted from indexing, never both,
and the index file and the gcloud commands carry exactly those exemptions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from django_tasks_fs.store import StoreSettings
from django_tasks_fs.store.documents import ScheduledTask, SlotReservation, TaskExecution
from django_tasks_fs.store.groups import TaskGroup
from django_tasks_fs.store.indexes import (
    ALL_QUERY_SHAPES,
    COLLECTIONS,
    TTL_FIELDS,
    UNINDEXED_FIELDS,
    QueryShape,
    gcloud_commands,
    index_document,
    queried_fields,
)
from django_tasks_fs.store.unique_keys import UniqueKeyHolder
from tests import index_recorder

NOW = datetime(2026, 1, 1, tzinfo=UTC)
#: One document of each collection, as the store writes it.
STORED: dict[str, dict[str, Any]] = {
    "executions": TaskExecution(
        id="e1",
        task_path="tests.tasks.noop",
        backend="default",
        queue_name="default",
        enqueued_at=NOW,
        run_after=NOW,
    ).to_document(),
    "schedules": ScheduledTask(
        name="nightly", task_path="tests.tasks.noop", schedule="0 3 * * *"
    ).to_document(),
    "schedule_slots": SlotReservation(
        schedule="nightly", slot=NOW, execution_id="e1", created_at=NOW
    ).to_document(),
    "unique_keys": UniqueKeyHolder(
        key="k", backend="default", task_path="tests.tasks.noop", execution_id="e1",
        enqueued_at=NOW,
    ).to_document(),
    "groups": TaskGroup(id="g1", backend="default", size=2, created_at=NOW).to_document(),
}  # fmt: skip


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_each_stored_field_is_queried_or_exempted(collection: str) -> None:
    """A new field fails here until store/indexes.py decides: a query uses it, or it is
    exempted from indexing."""
    stored = set(STORED[collection])
    queried, unindexed = queried_fields(collection), UNINDEXED_FIELDS[collection]
    assert queried & unindexed == set()
    assert sorted(stored - queried - unindexed) == [], "neither queried nor exempted"
    assert sorted((queried | unindexed) - stored) == [], "declared but never stored"


def test_the_declared_queries_use_no_exempted_field() -> None:
    assert [s for s in ALL_QUERY_SHAPES if index_recorder.uses_unindexed(s)] == []
    assert sorted(queried_fields("executions")) == [
        "backend",
        "dispatch_state",
        "enqueued_at",
        "finished_at",
        "group_id",
        "lease_expires_at",
        "priority",
        "queue_name",
        "run_after",
        "status",
        "task_path",
    ]
    assert queried_fields("schedules") == queried_fields("schedule_slots") == frozenset()
    assert queried_fields("unique_keys") == frozenset()
    assert sorted(queried_fields("groups")) == ["created_at", "status"]


def test_a_query_on_an_exempted_field_is_caught() -> None:
    shape = QueryShape("executions", frozenset({"status"}), (("heartbeat_at", "ASCENDING"),))
    assert index_recorder.uses_unindexed(shape)
    assert not index_recorder.uses_unindexed(
        QueryShape("schedules", frozenset(), ())  # the schedules listing: document ids only
    )


def test_the_index_file_exempts_each_unindexed_field_once() -> None:
    overrides = index_document(StoreSettings(project="p", collection_prefix="t_"))["fieldOverrides"]
    assert len(overrides) == sum(len(f) for f in UNINDEXED_FIELDS.values()) == 28 + 18 + 5 + 7 + 9
    keys = [(o["collectionGroup"], o["fieldPath"]) for o in overrides]
    assert len(set(keys)) == len(keys)  # one entry per field: TTL and exemption merged
    assert all(o["indexes"] == [] for o in overrides)
    assert [o for o in overrides if o.get("ttl")] == [
        {"collectionGroup": "t_executions", "fieldPath": "expires_at", "ttl": True, "indexes": []},
        {
            "collectionGroup": "t_schedule_slots",
            "fieldPath": "expires_at",
            "ttl": True,
            "indexes": [],
        },
        {"collectionGroup": "t_unique_keys", "fieldPath": "expires_at", "ttl": True, "indexes": []},
        {"collectionGroup": "t_groups", "fieldPath": "expires_at", "ttl": True, "indexes": []},
    ]
    assert set(TTL_FIELDS) == {"executions", "schedule_slots", "unique_keys", "groups"}
    assert {
        "collectionGroup": "t_executions",
        "fieldPath": "args",
        "indexes": [],
    } in overrides


def test_the_gcloud_commands_disable_the_indexes_of_each_unindexed_field() -> None:
    document = index_document(StoreSettings(project="p", collection_prefix="t_"))
    lines = gcloud_commands(document, database="tasks", project="p")
    disabled = [line for line in lines if " --disable-indexes " in line]
    assert len(disabled) == len(document["fieldOverrides"])
    assert (
        "gcloud firestore indexes fields update heartbeat_at --collection-group=t_executions "
        "--disable-indexes --database=tasks --project=p --async"
    ) in disabled
    # Exemptions before the TTL policies: the gcloud TTL command leaves a field indexed.
    first_ttl = next(i for i, line in enumerate(lines) if " ttls " in line)
    assert lines.index(disabled[-1]) < first_ttl
