"""The group store behaves alike on both document stores: counts of finished members,
the one commit that completes a group, the sweepers' query."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.tasks import TaskResultStatus

from django_tasks_fs.exceptions import GroupNotFound
from django_tasks_fs.store import ExecutionStore, StoreSettings, TaskExecution, new_execution_id
from django_tasks_fs.store.groups import (
    CallbackKind,
    GroupCallback,
    GroupStatus,
    GroupStore,
    TaskGroup,
    callback_execution_id,
)
from tests.conftest import ExecutionFactory


@pytest.fixture
def groups(store_settings: StoreSettings) -> GroupStore:
    return GroupStore(store_settings)


def new_group(groups: GroupStore, size: int) -> TaskGroup:
    return groups.create(
        TaskGroup(
            id=new_execution_id(),
            backend="default",
            size=size,
            on_complete=GroupCallback(
                task_path="tests.tasks.record_group", queue_name="default", args=["x"]
            ),
            created_at=groups.clock.now(),
        )
    )


def callback(executions: ExecutionStore, group: TaskGroup) -> TaskExecution:
    now = executions.clock.now()
    return TaskExecution(
        id=callback_execution_id(group.id, CallbackKind.ON_COMPLETE),
        task_path="tests.tasks.record_group",
        backend="default",
        queue_name="default",
        args=[group.id, {"size": group.size}],
        enqueued_at=now,
        run_after=now,
    )


def test_create_read_and_count_members(
    groups: GroupStore, make_execution: ExecutionFactory
) -> None:
    group = new_group(groups, 3)
    read = groups.get(group.id)
    assert read == group
    assert read.on_complete is not None
    assert read.on_complete.args == ["x"]
    statuses = [TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED, TaskResultStatus.READY]
    for status in statuses:
        make_execution(group_id=group.id, group_size=3, status=status)
    make_execution(status=TaskResultStatus.SUCCESSFUL)  # not a member
    assert groups.count_finished(group.id) == 2
    assert groups.count_succeeded(group.id) == 1
    assert groups.count_members(group.id) == 3  # in any status
    assert sorted(m.status for m in groups.members(group.id)) == sorted(statuses)
    with pytest.raises(GroupNotFound):
        groups.get("missing")


def test_complete_once_with_its_callbacks(groups: GroupStore, executions: ExecutionStore) -> None:
    group = new_group(groups, 2)
    done = groups.complete(
        group, [callback(executions, group)], succeeded=2, failed=0, expires_at=None
    )
    assert done is not None
    assert groups.get(group.id) == done
    assert (done.status, done.succeeded, done.failed) == (GroupStatus.COMPLETE, 2, 0)
    assert done.callback_ids == [callback_execution_id(group.id, CallbackKind.ON_COMPLETE)]
    assert executions.get(done.callback_ids[0]).args == [group.id, {"size": 2}]
    # A second checker, from the version it read before: nothing written.
    assert (
        groups.complete(
            group, [callback(executions, group)], succeeded=2, failed=0, expires_at=None
        )
        is None
    )
    # Even from the current version: the callback exists, so the whole commit is refused.
    assert (
        groups.complete(done, [callback(executions, group)], succeeded=1, failed=1, expires_at=None)
        is None
    )
    assert groups.get(group.id).succeeded == 2


def test_concurrent_completions_one_wins(groups: GroupStore, executions: ExecutionStore) -> None:
    group = new_group(groups, 1)
    barrier = threading.Barrier(8)
    won: list[bool] = []

    def complete() -> None:
        barrier.wait()
        read = groups.get(group.id)
        if read.status != GroupStatus.OPEN:
            won.append(False)
            return
        written = groups.complete(
            read, [callback(executions, read)], succeeded=1, failed=0, expires_at=None
        )
        won.append(written is not None)

    threads = [threading.Thread(target=complete) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert won.count(True) == 1
    assert executions.count() == 1


def test_open_groups_oldest_first_and_abandon(groups: GroupStore) -> None:
    first, second = new_group(groups, 1), new_group(groups, 1)
    later = groups.clock.now() + timedelta(seconds=1)
    oldest_first = [g.id for g in sorted([first, second], key=lambda g: (g.created_at, g.id))]
    assert [g.id for g in groups.open_groups(created_before=later, limit=10)] == oldest_first
    assert groups.open_groups(created_before=first.created_at, limit=10) == []
    assert groups.abandon(first.id, expires_at=later)
    assert groups.get(first.id).status == GroupStatus.ABANDONED
    assert groups.get(first.id).expires_at == later
    assert [g.id for g in groups.open_groups(created_before=later, limit=10)] == [second.id]
    # Conditional on the version read: a group changed since is left alone.
    assert not groups.abandon(second.id, expires_at=None, known=first)
    assert groups.get(second.id).status == GroupStatus.OPEN
    assert groups.abandon(second.id, expires_at=None, known=second)
    assert not groups.abandon("no-such-group", expires_at=None)
