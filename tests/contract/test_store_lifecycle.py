"""The execution and schedule stores behave alike on both document stores."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.tasks import TaskResultStatus

from django_tasks_fs.exceptions import ExecutionNotFound
from django_tasks_fs.store import (
    CancelOutcome,
    DispatchState,
    ErrorEntry,
    ExecutionFilter,
    ExecutionStore,
    ScheduledTask,
    ScheduleStore,
    TaskExecution,
    new_execution_id,
)
from django_tasks_fs.store.errors import ClaimReason, ClaimRefused, LeaseLost
from tests.conftest import ExecutionFactory

LEASE = timedelta(seconds=60)
ERROR = ErrorEntry(exception_class_path="builtins.ValueError", traceback="boom")


def test_create_claim_renew_succeed(
    executions: ExecutionStore, make_execution: ExecutionFactory
) -> None:
    created = make_execution()
    assert created.update_time is not None
    assert executions.get(created.id) == created
    lease = executions.claim(created.id, worker_id="w", lease_duration=LEASE)
    assert (lease.attempt, lease.execution.status) == (1, TaskResultStatus.RUNNING)
    with pytest.raises(ClaimRefused) as refused:
        executions.claim(created.id, worker_id="w2", lease_duration=LEASE)
    assert refused.value.reason == ClaimReason.LEASE_HELD
    renewed = executions.renew(lease, lease_duration=LEASE * 2)
    assert renewed.execution.update_time > lease.execution.update_time  # type: ignore[operator]
    done = executions.succeed(renewed, {"ok": [1, 2]})
    assert done.status == TaskResultStatus.SUCCESSFUL
    assert executions.get(created.id).return_value == {"ok": [1, 2]}
    with pytest.raises(LeaseLost):
        executions.succeed(lease, "late")


def test_fail_then_retry_then_exhausted(
    executions: ExecutionStore, make_execution: ExecutionFactory
) -> None:
    created = make_execution(max_attempts=2)
    first = executions.claim(created.id, worker_id="w", lease_duration=LEASE)
    assert executions.fail(first, ERROR, retryable=True).status == TaskResultStatus.READY
    second = executions.claim(created.id, worker_id="w", lease_duration=LEASE)
    failed = executions.fail(second, ERROR, retryable=True)
    assert (failed.status, failed.attempts, len(failed.errors)) == (TaskResultStatus.FAILED, 2, 2)


def test_cancel_ready_running_and_finished(
    executions: ExecutionStore, make_execution: ExecutionFactory
) -> None:
    ready = make_execution()
    cancelled, outcome = executions.cancel(ready.id)
    assert (cancelled.status, outcome) == (TaskResultStatus.FAILED, CancelOutcome.CANCELLED)
    finished = executions.get(ready.id)
    _, outcome = executions.cancel(ready.id)
    assert outcome == CancelOutcome.ALREADY_FINISHED
    assert executions.get(ready.id).update_time == finished.update_time

    running = make_execution()
    lease = executions.claim(running.id, worker_id="w", lease_duration=LEASE)
    _, outcome = executions.cancel(running.id)
    assert outcome == CancelOutcome.REQUESTED
    assert executions.renew(lease, lease_duration=LEASE).cancel_requested
    with pytest.raises(ExecutionNotFound):
        executions.cancel("nope")


def test_claim_many_in_one_batch_and_after_a_race(
    executions: ExecutionStore, make_execution: ExecutionFactory
) -> None:
    made = [make_execution() for _ in range(3)]
    found = executions.ready(backend="default")
    leases = executions.claim_many(found, worker_id="w", lease_duration=LEASE)
    assert sorted(lease.execution_id for lease in leases) == sorted(e.id for e in made)
    assert len({lease.execution.update_time for lease in leases}) == 1  # one commit

    more = [make_execution() for _ in range(3)]
    found = executions.ready(backend="default")
    executions.claim(more[0].id, worker_id="rival", lease_duration=LEASE)  # stale snapshot
    leases = executions.claim_many(found, worker_id="w", lease_duration=LEASE)
    assert sorted(lease.execution_id for lease in leases) == sorted(e.id for e in more[1:])


def test_racing_claims_have_one_winner(
    executions: ExecutionStore, make_execution: ExecutionFactory
) -> None:
    created = make_execution()
    barrier = threading.Barrier(6)
    won: list[str] = []

    def claim(worker: str) -> None:
        barrier.wait()
        try:
            executions.claim(created.id, worker_id=worker, lease_duration=LEASE)
        except ClaimRefused:
            return
        won.append(worker)

    threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(won) == 1
    assert executions.get(created.id).worker_ids == won


def test_worker_queries(executions: ExecutionStore, make_execution: ExecutionFactory) -> None:
    now = executions.clock.now()
    low = make_execution(priority=0, run_after=now - timedelta(minutes=2))
    high = make_execution(priority=5, run_after=now - timedelta(minutes=1))
    make_execution(run_after=now + timedelta(hours=1))
    pending = make_execution(dispatch_state=DispatchState.PENDING, queue_name="emails")
    assert [e.id for e in executions.ready(backend="default", queues=["default"])] == [
        high.id,
        low.id,
    ]
    assert executions.ready(backend="other") == []
    short = executions.claim(low.id, worker_id="w", lease_duration=timedelta(milliseconds=1))
    later = short.expires_at + timedelta(seconds=1)  # type: ignore[operator]
    assert [e.id for e in executions.expired_leases(backend="default", now=later)] == [low.id]
    cutoff = executions.clock.now() + timedelta(seconds=1)
    assert [e.id for e in executions.pending_dispatch(backend="default", older_than=cutoff)] == [
        pending.id
    ]


def test_pages_counts_and_retention(
    executions: ExecutionStore, make_execution: ExecutionFactory
) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    made = [make_execution(enqueued_at=base + timedelta(minutes=i)) for i in range(5)]
    make_execution(enqueued_at=base, queue_name="other")
    filters = ExecutionFilter(queue_name="default")
    first = executions.page(filters, limit=3)
    second = executions.page(filters, cursor=first.next_cursor, limit=3)
    assert [e.id for e in first.items + second.items] == [e.id for e in reversed(made)]
    assert second.next_cursor is None
    exactly_full = executions.page(filters, limit=5)  # no "Next" to an empty page
    assert len(exactly_full.items) == 5
    assert exactly_full.next_cursor is None
    assert executions.count(filters) == 5
    assert executions.count() == 6
    assert executions.count(filters, limit=3) == 3  # a capped count (the admin's)
    assert executions.count(filters, limit=10) == 5
    with pytest.raises(ExecutionNotFound):
        executions.page(cursor=new_execution_id())

    for execution in made[:3]:
        executions.succeed(executions.claim(execution.id, worker_id="w", lease_duration=LEASE), 1)
    later = executions.clock.now() + timedelta(seconds=1)
    query = {"backend": "default", "status": TaskResultStatus.SUCCESSFUL, "before": later}
    assert executions.count_finished_before(**query) == 3  # type: ignore[arg-type]
    ids = executions.finished_before(**query, limit=2)  # type: ignore[arg-type]
    assert len(ids) == 2
    assert executions.delete_many(ids) == 2
    assert executions.count_finished_before(**query) == 1  # type: ignore[arg-type]
    assert [e.id for e in executions.get_many([made[4].id, ids[0], made[3].id])] == [
        made[4].id,
        made[3].id,
    ]


def test_a_slot_enqueues_exactly_once(executions: ExecutionStore, schedules: ScheduleStore) -> None:
    schedule = schedules.create(
        ScheduledTask(name="every-five", task_path="tests.tasks.noop", schedule="*/5 * * * *")
    )
    slot = datetime(2026, 11, 24, 10, 5, tzinfo=UTC)

    def execution() -> TaskExecution:
        now = executions.clock.now()
        return TaskExecution(
            id=new_execution_id(),
            task_path="tests.tasks.noop",
            backend="default",
            queue_name="default",
            enqueued_at=now,
            run_after=now,
            scheduled_task="every-five",
        )

    first = execution()
    assert schedules.reserve_slot(schedule, slot, first)
    assert not schedules.reserve_slot(schedule, slot, execution())
    assert schedules.slot_execution_id("every-five", slot) == first.id
    assert executions.count() == 1
    assert schedules.get("every-five").last_execution_id == first.id
    updated = schedules.update("every-five", lambda s: s.evolve(enabled=False))
    assert [s.name for s in schedules.list()] == ["every-five"]
    assert not updated.enabled
    assert schedules.delete("every-five")
    assert not schedules.delete("every-five")
