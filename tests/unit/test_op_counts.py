"""Operation accounting (store.ops.counting): the exact Firestore bill of the local lifecycle.

The figures are derived from the code, on the in-memory store (same operations as on
Firestore). A change that adds a read or a write to the uncontended path fails here;
reducing them is welcome, and then these numbers go down with it.
"""

from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.tasks import TaskResultStatus, task_backends

from django_tasks_fs.execution.recorders import BufferedRecorder
from django_tasks_fs.store.ops import (
    CountingOps,
    MemoryDatabase,
    MemoryOps,
    OpCounts,
    PreconditionFailed,
    Query,
    Update,
    reset_memory,
)
from django_tasks_fs.store.ops.counting import (
    OP_COUNTS_ENV,
    collect,
    count_reads,
    disable_counting,
    enable_counting,
    write_report,
)
from django_tasks_fs.worker import chunks
from tests import tasks

TASKS = 5


@pytest.fixture
def counts(settings: Any) -> Iterator[OpCounts]:
    """One ProcessBackend on a fresh in-memory project, its operations counted.

    Heartbeats are far apart so that no renewal can fall inside these microsecond tasks.
    """
    settings.TASKS = {
        "default": {
            "BACKEND": "django_tasks_fs.backends.ProcessBackend",
            "OPTIONS": {
                "project_id": f"ops-{uuid.uuid4().hex[:8]}",
                "store": "memory",
                "heartbeat_interval_seconds": 600,
                "heartbeat_timeout_seconds": 1200,
            },
        }
    }
    counted = enable_counting()
    counted.reset()
    try:
        yield counted
    finally:
        disable_counting()
        counted.reset()
        reset_memory()


def test_local_lifecycle_costs_three_writes_and_one_read_per_task(
    counts: OpCounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend: Any = task_backends["default"]
    store = backend.executions
    assert isinstance(store.documents, CountingOps)

    results = [tasks.noop.enqueue() for _ in range(TASKS)]
    # The store's one read of the server's time (ServerClock), then one create per task.
    assert counts.as_dict() == {
        "writes": TASKS,
        "reads": 1,
        "billed_reads": 1,
        "queries": 0,
        "listens": 0,
        "commits": TASKS,
        "conflicts": 0,
        "rpcs": TASKS + 1,
    }

    # The worker's first poll: due executions, and expired leases (none: billed 1 read).
    counts.reset()
    ready = store.ready(backend=backend.alias, limit=50)
    assert store.expired_leases(backend=backend.alias, limit=50) == []
    assert len(ready) == TASKS
    assert counts.as_dict() == {
        "writes": 0,
        "reads": TASKS,
        "billed_reads": TASKS + 1,
        "queries": 2,
        "listens": 0,
        "commits": 0,
        "conflicts": 0,
        "rpcs": 2,
    }

    # A warm process runs the chunk: one commit claims all, one commit records all
    # (the result writer flushes only when the chunk closes: no timing involved).
    counts.reset()
    monkeypatch.setattr(chunks, "BufferedRecorder", functools.partial(BufferedRecorder, delay=3600))
    job = chunks.Job(backend=backend.alias, executions=tuple(ready))
    done = chunks.run_chunk(job, "test-worker", threading.Event())
    assert [d.outcome for d in done] == ["succeeded"] * TASKS
    assert counts.as_dict() == {
        "writes": 2 * TASKS,
        "reads": 0,
        "billed_reads": 0,
        "queries": 0,
        "listens": 0,
        "commits": 2,
        "conflicts": 0,
        "rpcs": 2,
    }
    assert all(store.get(r.id).status == TaskResultStatus.SUCCESSFUL for r in results)


def test_conflicts_counts_and_empty_queries_are_billed_as_firestore_bills_them() -> None:
    counts = OpCounts()
    ops = CountingOps(MemoryOps(MemoryDatabase()), counts)
    first = ops.create("c", "a", {"n": 1})
    assert first is not None
    ops.update("c", "a", {"n": 2}, last_update_time=first)
    with pytest.raises(PreconditionFailed):
        ops.commit([Update("c", "a", {"n": 3}, first), Update("c", "b", {"n": 3}, first)])
    assert ops.query(Query(collection="c", limit=10))[0].data == {"n": 2}
    assert ops.query(Query(collection="empty")) == []
    assert ops.count(Query(collection="c")) == 1
    assert ops.get_many("c", ["a", "missing"])[1].exists is False
    assert counts.as_dict() == {
        "writes": 2,  # the refused batch wrote nothing
        "reads": 1 + 0 + 1 + 2,  # query, empty query, count, get_many (a missing one too)
        "billed_reads": 1 + 1 + 1 + 2,  # the empty query is billed one read
        "queries": 3,
        "listens": 0,
        "commits": 3,
        "conflicts": 1,
        "rpcs": 7,
    }
    assert [count_reads(n) for n in (0, 1, 1000, 1001, 2500)] == [1, 1, 1, 2, 3]


def test_each_process_reports_to_the_directory_and_collect_sums_them(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(OP_COUNTS_ENV, str(tmp_path))
    counted = enable_counting()
    counted.reset()
    try:
        counted.add(writes=3, reads=1, rpcs=4)
        write_report()
        write_report()
    finally:
        disable_counting()
        counted.reset()
    assert len(list(tmp_path.glob("ops-*.json"))) == 2
    assert collect(tmp_path).as_dict() == {
        **OpCounts().as_dict(),
        "writes": 6,
        "reads": 2,
        "rpcs": 8,
    }
