"""Operation accounting (store.ops.counting): the exact Firestore bill of each lifecycle
(local worker, Cloud Tasks' ``execute/``, Cloud Run Jobs' ``execute_task``).

The figures are derived from the code, on the in-memory store (same operations as on
Firestore). A change that adds a read or a write to the uncontended path fails here;
reducing them is welcome, and then these numbers go down with it.
"""

from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.tasks import TaskResultStatus, task_backends
from django.test import Client

from django_tasks_fs.execution.recorders import BufferedRecorder
from django_tasks_fs.store import DispatchState, TaskExecution
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
from tests import tasks, tokens

TASKS = 5
#: Heartbeats far apart, so that no renewal can fall inside these microsecond tasks.
SLOW_HEARTBEAT = {"heartbeat_interval_seconds": 600, "heartbeat_timeout_seconds": 1200}


def one_backend(settings: Any, backend: str, **options: Any) -> None:
    """TASKS: one backend of class ``backend`` on a fresh in-memory project."""
    settings.TASKS = {
        "default": {
            "BACKEND": f"django_tasks_fs.backends.{backend}",
            "OPTIONS": {
                "project_id": f"ops-{uuid.uuid4().hex[:8]}",
                "store": "memory",
                **SLOW_HEARTBEAT,
                **options,
            },
        }
    }


def cloud_backend(settings: Any, backend: str, **options: Any) -> Any:
    """A Google Cloud backend whose platform calls are fakes that always succeed (the
    endpoints and commands are what is counted here; tests/e2e drives the real APIs)."""
    one_backend(
        settings,
        backend,
        location="us-central1",
        base_url="http://testserver/tasks/",
        oidc_service_account="invoker@tests.iam.gserviceaccount.com",
        emulator_host="127.0.0.1:9",
        cache_ttl_max_attempts=0,
        **options,
    )
    cloud: Any = task_backends["default"]

    def send(execution: TaskExecution, *, resend: bool = False) -> dict[str, str]:
        return {}

    cloud.send = send
    cloud.platform_max_attempts = lambda queue: 3
    return cloud


def new_process() -> Any:
    """The backend as a new process sees it: a fresh store whose clock knows nothing
    (the in-memory documents stay: they belong to the project, not the store)."""
    del task_backends["default"]
    return task_backends["default"]


@pytest.fixture
def counts(counts: OpCounts) -> Iterator[OpCounts]:
    """The shared ``counts`` (tests/conftest.py); the in-memory store emptied after."""
    yield counts
    reset_memory()


def test_local_lifecycle_costs_three_writes_and_one_read_per_task(
    counts: OpCounts, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    one_backend(settings, "ProcessBackend")
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


def enqueue_counts(tasks_enqueued: int) -> dict[str, int]:
    """The enqueue process: its one read of the server's time, then one create per task
    (nothing written after the send: the delivery's claim records the dispatch)."""
    return {
        "writes": tasks_enqueued,
        "reads": 1,
        "billed_reads": 1,
        "queries": 0,
        "listens": 0,
        "commits": tasks_enqueued,
        "conflicts": 0,
        "rpcs": tasks_enqueued + 1,
    }


#: One delivery, uncontended: the claim's read and write, the result's write. No read of
#: the server's time: the claim decides on the time its own read brought.
DELIVERY = {
    "writes": 2,
    "reads": 1,
    "billed_reads": 1,
    "queries": 0,
    "listens": 0,
    "commits": 2,
    "conflicts": 0,
    "rpcs": 3,
}


def test_cloud_tasks_lifecycle_costs_three_writes_and_one_read_per_task(
    counts: OpCounts, settings: Any, certs: Any, issuer: Any
) -> None:
    cloud = cloud_backend(settings, "CloudTasksBackend", oidc_certs_url=certs.url)
    results = [tasks.noop.enqueue() for _ in range(TASKS)]
    assert counts.as_dict() == enqueue_counts(TASKS)
    assert {cloud.executions.get(r.id).dispatch_state for r in results} == {DispatchState.PENDING}

    counts.reset()
    new_process()  # the app serving execute/ (a clock that has learned nothing yet)
    client = Client()
    for result in results:
        response = client.post(
            "/tasks/execute/",
            f"execution_id={result.id}&backend=default",
            content_type="application/x-www-form-urlencoded",
            HTTP_AUTHORIZATION=f"Bearer {tokens.sign(issuer)}",
            HTTP_X_CLOUDTASKS_QUEUENAME="default",
            HTTP_X_CLOUDTASKS_TASKNAME=result.id,
        )
        assert response.status_code == 200, response.content
    assert counts.as_dict() == {k: TASKS * v for k, v in DELIVERY.items()}

    stored = [new_process().executions.get(r.id) for r in results]
    assert {(e.status, e.dispatch_state) for e in stored} == {
        (TaskResultStatus.SUCCESSFUL, DispatchState.DISPATCHED)
    }
    assert stored[0].cloud_task_name == (
        f"projects/{cloud.cloud.project_id}/locations/us-central1/queues/default"
        f"/tasks/{results[0].id}"
    )


def test_cloud_run_jobs_lifecycle_costs_three_writes_and_one_read_per_task(
    counts: OpCounts, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud = cloud_backend(settings, "CloudRunJobsBackend", oidc_certs_url="http://127.0.0.1:9/")
    result = tasks.noop.enqueue()
    assert counts.as_dict() == enqueue_counts(1)

    # The job's process: execute_task <id>, without --backend (found by its one read).
    counts.reset()
    new_process()
    monkeypatch.setenv("CLOUD_RUN_JOB", "default")
    monkeypatch.setenv("CLOUD_RUN_EXECUTION", "default-x7k2p")
    with pytest.raises(SystemExit) as exited:
        call_command("execute_task", result.id, stdout=StringIO())
    assert exited.value.code == 0
    assert counts.as_dict() == DELIVERY

    stored = new_process().executions.get(result.id)
    assert (stored.status, stored.dispatch_state) == (
        TaskResultStatus.SUCCESSFUL,
        DispatchState.DISPATCHED,
    )
    assert stored.cloud_run_execution == (
        f"projects/{cloud.cloud.project_id}/locations/us-central1/jobs/default"
        "/executions/default-x7k2p"
    )


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
