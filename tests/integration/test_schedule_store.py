"""Scheduled tasks and exactly-once slot reservations on the emulator."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from django_tasks_fs.exceptions import ScheduleNotFound
from django_tasks_fs.store import (
    ExecutionFilter,
    ExecutionStore,
    ScheduledTask,
    ScheduleStore,
    TaskExecution,
    new_execution_id,
    validate_schedule_name,
)
from django_tasks_fs.store.ops import DocumentExists

SLOT = datetime(2026, 11, 24, 10, 5, tzinfo=UTC)


def schedule(name: str = "every-five", **changes: object) -> ScheduledTask:
    return ScheduledTask(
        name=name,
        task_path="tests.tasks.echo",
        schedule="*/5 * * * *",
        time_zone="Europe/Paris",
        args=[1, [2]],
        kwargs={"k": "v"},
    ).evolve(**changes)


def execution_for(item: ScheduledTask, store: ExecutionStore) -> TaskExecution:
    now = store.clock.now()
    return TaskExecution(
        id=new_execution_id(),
        task_path=item.task_path,
        backend=item.backend,
        queue_name=item.queue_name,
        args=item.args,
        kwargs=item.kwargs,
        enqueued_at=now,
        run_after=now,
        scheduled_task=item.name,
    )


def test_crud(schedules: ScheduleStore) -> None:
    created = schedules.create(schedule())
    assert created.created_at is not None
    loaded = schedules.get("every-five")
    assert loaded == created
    with pytest.raises(DocumentExists):
        schedules.create(schedule())

    changed = schedules.update(
        "every-five", lambda s: s.evolve(enabled=False, schedule="0 * * * *")
    )
    assert schedules.get("every-five") == changed
    assert changed.created_at == created.created_at
    assert not changed.enabled

    replaced = schedules.save(schedule(description="new"))
    assert replaced.description == "new"
    assert replaced.created_at == created.created_at
    schedules.save(schedule("another"))
    assert [s.name for s in schedules.list()] == ["another", "every-five"]

    assert schedules.delete("every-five") is True
    assert schedules.delete("every-five") is False
    with pytest.raises(ScheduleNotFound, match="'every-five'"):
        schedules.get("every-five")
    with pytest.raises(ScheduleNotFound):
        schedules.update("every-five", lambda s: s)


@pytest.mark.parametrize(
    "name", ["", "a/b", "has space", "x" * 201, "dots.not.allowed", "name\n", "__x__"]
)
def test_invalid_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="Invalid scheduled task name"):
        validate_schedule_name(name)


def test_a_slot_is_reserved_exactly_once_by_racing_threads(
    schedules: ScheduleStore, executions: ExecutionStore
) -> None:
    item = schedules.create(schedule())
    results: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(16)

    def fire() -> None:
        candidate = execution_for(item, executions)
        barrier.wait()
        won = schedules.reserve_slot(item, SLOT, candidate)
        with lock:
            results.append(won)

    threads = [threading.Thread(target=fire) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(results) == [False] * 15 + [True]
    assert executions.count(ExecutionFilter(task_path="tests.tasks.echo")) == 1
    execution_id = schedules.slot_execution_id("every-five", SLOT)
    stored = executions.get(execution_id or "")
    assert stored.scheduled_task == "every-five"
    assert stored.args == [1, [2]]
    fired = schedules.get("every-five")
    assert fired.last_slot == SLOT
    assert fired.last_execution_id == execution_id

    # A replay of the same slot later is refused too; the next slot is not.
    assert schedules.reserve_slot(item, SLOT, execution_for(item, executions)) is False
    assert schedules.reserve_slot(item, SLOT.replace(minute=10), execution_for(item, executions))
    assert executions.count() == 2


def test_reserving_for_a_deleted_schedule_writes_nothing(
    schedules: ScheduleStore, executions: ExecutionStore
) -> None:
    item = schedules.create(schedule())
    schedules.delete(item.name)
    with pytest.raises(ScheduleNotFound, match="'every-five'"):
        schedules.reserve_slot(item, SLOT, execution_for(item, executions))
    assert executions.count() == 0
    assert schedules.slot_execution_id(item.name, SLOT) is None
