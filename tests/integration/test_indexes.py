"""The index file covers the store's queries; the command prints it; the check can fail."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

from django.core.management import call_command
from django.tasks import task_backends
from google.cloud.firestore_v1.base_query import FieldFilter

from django_tasks_fs.store import ExecutionFilter, ExecutionStore
from django_tasks_fs.store.indexes import (
    QUERY_SHAPES,
    UNINDEXED_FIELDS,
    QueryShape,
    covers,
    index_document,
)
from tests import index_recorder


def test_every_store_query_is_covered(executions: ExecutionStore) -> None:
    executions.ready(backend="default", queues=["a", "b"])
    executions.ready(backend="default")
    executions.expired_leases(backend="default")
    executions.pending_dispatch(backend="default", older_than=executions.clock.now())
    executions.page(ExecutionFilter(status="READY", task_path="x"))  # type: ignore[arg-type]
    executions.page(ExecutionFilter(backend="b", queue_name="q"))
    executions.count(ExecutionFilter(backend="b"))
    shapes = index_recorder.recorded()
    assert (
        QueryShape(
            "executions",
            frozenset({"status", "backend", "queue_name"}),
            (("priority", "DESCENDING"), ("run_after", "ASCENDING")),
        )
        in shapes
    )
    assert index_recorder.uncovered() == []
    assert index_recorder.unindexed_uses() == []


def test_an_undeclared_query_is_caught(executions: ExecutionStore) -> None:
    collection = executions.client.collection(executions.collection_name)
    query = collection.where(filter=FieldFilter("task_path", "==", "x")).order_by("priority")
    shape = index_recorder.shape_of(index_recorder.original_to_protobuf(query))  # not recorded
    assert shape == QueryShape("executions", frozenset({"task_path"}), (("priority", "ASCENDING"),))
    assert shape.needs_composite_index()
    assert not any(covers(index, shape) for index in QUERY_SHAPES)


def test_index_document_and_command(tasks_project: str) -> None:
    out = StringIO()
    call_command("firestore_indexes", "--backend", "default", stdout=out)
    document = json.loads(out.getvalue())
    backend: Any = task_backends["default"]
    assert document == index_document(backend.config.store_settings())
    first: Any = document["indexes"][0]
    assert first["collectionGroup"] == "t_executions"
    assert first["fields"] == [
        {"fieldPath": "backend", "order": "ASCENDING"},
        {"fieldPath": "status", "order": "ASCENDING"},
        {"fieldPath": "priority", "order": "DESCENDING"},
        {"fieldPath": "run_after", "order": "ASCENDING"},
    ]
    assert {
        "collectionGroup": "t_executions",
        "fieldPath": "expires_at",
        "ttl": True,
        "indexes": [],
    } in document["fieldOverrides"]
    assert (
        len(document["indexes"]) == len(QUERY_SHAPES) == 5 + 4 + 15 + 1
    )  # the worker's queries, the dashboard's, every combination of listing filters, the group sweepers'


def test_the_command_prints_the_gcloud_commands_for_each_database(
    tasks_project: str, settings: Any
) -> None:
    settings.TASKS = {
        **settings.TASKS,
        "other": {
            "BACKEND": "django_tasks_fs.backends.ProcessBackend",
            "OPTIONS": {"project_id": "p2", "database": "tasks", "collection_prefix": "t_"},
        },
    }
    out = StringIO()
    call_command(
        "firestore_indexes", "--gcloud", "--backend", "default", "--backend", "other", stdout=out
    )
    lines = out.getvalue().splitlines()
    exemptions = sum(len(f) for f in UNINDEXED_FIELDS.values())
    # two databases: each its composite indexes, its exemptions and 4 TTL policies
    assert len(lines) == 2 * (len(QUERY_SHAPES) + exemptions + 4)
    where = f"'--database=(default)' --project={tasks_project} --async"
    assert lines[0] == (
        "gcloud firestore indexes composite create --collection-group=t_executions "
        "--query-scope=collection --field-config=field-path=backend,order=ascending "
        "--field-config=field-path=status,order=ascending "
        "--field-config=field-path=priority,order=descending "
        f"--field-config=field-path=run_after,order=ascending {where}"
    )
    ttls = [line for line in lines if " ttls " in line]
    assert ttls == [
        "gcloud firestore fields ttls update expires_at --collection-group=t_executions "
        f"--enable-ttl {where}",
        "gcloud firestore fields ttls update expires_at --collection-group=t_schedule_slots "
        f"--enable-ttl {where}",
        "gcloud firestore fields ttls update expires_at --collection-group=t_unique_keys "
        f"--enable-ttl {where}",
        "gcloud firestore fields ttls update expires_at --collection-group=t_groups "
        f"--enable-ttl {where}",
        "gcloud firestore fields ttls update expires_at --collection-group=t_executions "
        "--enable-ttl --database=tasks --project=p2 --async",
        "gcloud firestore fields ttls update expires_at --collection-group=t_schedule_slots "
        "--enable-ttl --database=tasks --project=p2 --async",
        "gcloud firestore fields ttls update expires_at --collection-group=t_unique_keys "
        "--enable-ttl --database=tasks --project=p2 --async",
        "gcloud firestore fields ttls update expires_at --collection-group=t_groups "
        "--enable-ttl --database=tasks --project=p2 --async",
    ]
