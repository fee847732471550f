"""Queries: due READY executions, expired leases, listing pages, counts, named databases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.tasks import TaskResultStatus

from django_tasks_fs.exceptions import ExecutionNotFound
from django_tasks_fs.store import (
    DispatchState,
    ExecutionFilter,
    ExecutionStore,
    StoreSettings,
    TaskExecution,
    new_execution_id,
)
from tests.conftest import ExecutionFactory, wait_until

LEASE = timedelta(seconds=60)


def test_ready_is_due_only_filtered_and_ordered_by_priority_then_age(
    executions: ExecutionStore, make_execution: ExecutionFactory
) -> None:
    now = executions.clock.now()
    old_low = make_execution(priority=0, run_after=now - timedelta(minutes=5))
    new_low = make_execution(priority=0, run_after=now - timedelta(minutes=1))
    high = make_execution(priority=10, run_after=now - timedelta(seconds=30))
    negative = make_execution(priority=-5, run_after=now - timedelta(hours=1))
    other_queue = make_execution(queue_name="emails")
    make_execution(run_after=now + timedelta(hours=1))  # not due
    make_execution(backend="other")  # another backend
    running = make_execution()
    executions.claim(running.id, worker_id="w", lease_duration=LEASE)

    ready = executions.ready(backend="default", queues=["default"])
    assert [e.id for e in ready] == [high.id, old_low.id, new_low.id, negative.id]

    both = executions.ready(backend="default", queues=["default", "emails"])
    assert {e.id for e in both} == {high.id, old_low.id, new_low.id, negative.id, other_queue.id}
    assert len(executions.ready(backend="default", limit=2)) == 2
    assert all(e.update_time is not None for e in ready)


def test_a_ready_snapshot_claims_with_one_write(
    executions: ExecutionStore, make_execution: ExecutionFactory
) -> None:
    make_execution()
    (found,) = executions.ready(backend="default")
    lease = executions.claim(found.id, worker_id="w", lease_duration=LEASE, known=found)
    assert lease.attempt == 1


def test_expired_leases(executions: ExecutionStore, make_execution: ExecutionFactory) -> None:
    dying = make_execution()
    alive = make_execution()
    short = executions.claim(dying.id, worker_id="w1", lease_duration=timedelta(milliseconds=100))
    executions.claim(alive.id, worker_id="w2", lease_duration=LEASE)
    wait_until(lambda: executions.clock.now() > short.expires_at)  # type: ignore[operator]
    assert [e.id for e in executions.expired_leases(backend="default")] == [dying.id]
    assert executions.expired_leases(backend="other") == []


def test_pending_dispatch(executions: ExecutionStore, make_execution: ExecutionFactory) -> None:
    pending = make_execution(dispatch_state=DispatchState.PENDING)
    make_execution(dispatch_state=DispatchState.DISPATCHED)
    make_execution()  # LOCAL
    cutoff = executions.clock.now() + timedelta(seconds=1)
    assert [e.id for e in executions.pending_dispatch(backend="default", older_than=cutoff)] == [
        pending.id
    ]
    executions.set_dispatch(
        pending.id,
        DispatchState.DISPATCHED,
        cloud_task_name="projects/p/locations/l/queues/q/tasks/t",
    )
    assert executions.pending_dispatch(backend="default", older_than=cutoff) == []
    assert executions.get(pending.id).cloud_task_name == "projects/p/locations/l/queues/q/tasks/t"


def test_pages_walk_every_execution_newest_first_with_filters(
    executions: ExecutionStore, make_execution: ExecutionFactory
) -> None:
    start = executions.clock.now()
    made = [
        make_execution(
            enqueued_at=start + timedelta(seconds=i),
            task_path="tests.tasks.noop" if i % 3 else "tests.tasks.echo",
        )
        for i in range(25)
    ]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = executions.page(cursor=cursor, limit=10)
        seen.extend(e.id for e in page.items)
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [e.id for e in reversed(made)]
    assert pages == 3

    echo_filter = ExecutionFilter(task_path="tests.tasks.echo", status=TaskResultStatus.READY)
    echo = executions.page(echo_filter, limit=100)
    assert [e.id for e in echo.items] == [
        e.id for e in reversed(made) if e.task_path.endswith("echo")
    ]
    assert executions.count(echo_filter) == 9
    assert executions.count() == 25
    assert executions.count(ExecutionFilter(status=TaskResultStatus.RUNNING)) == 0
    with pytest.raises(ExecutionNotFound):
        executions.page(cursor="missing")


def test_get_many(executions: ExecutionStore, make_execution: ExecutionFactory) -> None:
    a, b = make_execution(), make_execution()
    assert {e.id for e in executions.get_many([a.id, "missing", b.id])} == {a.id, b.id}


def test_named_databases_are_isolated(project_id: str) -> None:
    store_a = ExecutionStore(StoreSettings(project=project_id, database="db-a"))
    store_b = ExecutionStore(StoreSettings(project=project_id, database="db-b"))
    now = store_a.clock.now()
    execution = store_a.create(
        TaskExecution(
            id=new_execution_id(),
            task_path="tests.tasks.noop",
            backend="default",
            queue_name="default",
            enqueued_at=now,
            run_after=now,
        )
    )
    assert store_a.get(execution.id) == execution
    with pytest.raises(ExecutionNotFound):
        store_b.get(execution.id)
    assert store_b.ready(backend="default") == []
    assert [e.id for e in store_a.ready(backend="default")] == [execution.id]
    assert store_b.count() == 0


def test_collection_prefix_isolates_apps_in_one_database(project_id: str) -> None:
    one = ExecutionStore(StoreSettings(project=project_id, collection_prefix="app1_"))
    two = ExecutionStore(StoreSettings(project=project_id, collection_prefix="app2_"))
    now = one.clock.now()
    one.create(
        TaskExecution(
            id="same-id",
            task_path="tests.tasks.noop",
            backend="default",
            queue_name="default",
            enqueued_at=now,
            run_after=now,
        )
    )
    assert one.count() == 1
    assert two.count() == 0
