"""Task groups on the in-memory store: the callbacks run once, whatever happens around
the members' finishing writes (duplicates, lost checks, retries, cancels)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.tasks import TaskResultStatus, task_backends
from django.tasks.exceptions import InvalidTask

from django_tasks_fs import (
    GroupNotFound,
    NotJSONSerializable,
    aenqueue_group,
    cancel_task,
    enqueue_group,
    get_group,
)
from django_tasks_fs.exceptions import StoreUnavailable
from django_tasks_fs.execution.attempt import Attempt
from django_tasks_fs.group_completion import GROUP_ENQUEUE_DEADLINE, check_group, sweep_groups
from django_tasks_fs.store.groups import (
    CallbackKind,
    GroupStatus,
    callback_execution_id,
)
from django_tasks_fs.store.ops import OpCounts, Query, reset_memory
from django_tasks_fs.store.ops.counting import disable_counting, enable_counting
from django_tasks_fs.testing import TaskRunner
from tests import tasks
from tests.settings import tasks_setting


@pytest.fixture
def memory(settings: Any) -> Iterator[str]:
    project = f"mem-{uuid.uuid4().hex[:8]}"
    settings.TASKS = tasks_setting(project, store="memory")
    yield project
    reset_memory()


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "callbacks.txt"


def lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def callbacks(log: Path) -> dict[str, Any]:
    return {
        "on_complete": (tasks.record_group, [str(log), "complete"], {}),
        "on_success": (tasks.record_group, [str(log), "success"], {}),
    }


def finish_members_without_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every due execution as if each worker died right after its finishing write."""
    monkeypatch.setattr("django_tasks_fs.execution.attempt.member_finished", lambda *a: None)
    TaskRunner().run_all()
    monkeypatch.undo()


def test_a_group_runs_its_members_then_each_callback_once(memory: str, log: Path) -> None:
    group = enqueue_group(tasks.echo, [((i,), {}) for i in range(5)], **callbacks(log))
    assert (group.size, group.status, group.is_complete) == (5, GroupStatus.OPEN, False)
    assert [m.args for m in group.members] == [[i] for i in range(5)]
    assert {m.status for m in group.members} == {TaskResultStatus.READY}
    TaskRunner().run_all()
    assert sorted(lines(log)) == [f"complete {group.id} 5 5 0", f"success {group.id} 5 5 0"]
    done = group.refresh()
    assert (done.status, done.succeeded, done.failed) == (GroupStatus.COMPLETE, 5, 0)
    assert set(done.callback_ids) == {
        callback_execution_id(group.id, CallbackKind.ON_COMPLETE),
        callback_execution_id(group.id, CallbackKind.ON_SUCCESS),
    }
    assert sorted(m.return_value["args"][0] for m in done.members) == list(range(5))
    backend: Any = task_backends["default"]
    complete = backend.get_result(callback_execution_id(group.id, CallbackKind.ON_COMPLETE))
    assert complete.status == TaskResultStatus.SUCCESSFUL
    assert complete.args == [
        group.id,
        {"size": 5, "succeeded": 5, "failed": 0},
        str(log),
        "complete",
    ]


def test_on_success_is_not_enqueued_when_a_member_failed(memory: str, log: Path) -> None:
    members = [(tasks.echo, (1,), {}), (tasks.permanent, (), {}), (tasks.echo, (2,), {})]
    group = enqueue_group(members, **callbacks(log))
    assert [m.task.name for m in group.members] == ["echo", "permanent", "echo"]
    TaskRunner().run_all()
    assert lines(log) == [f"complete {group.id} 3 2 1"]
    done = get_group(group.id)
    assert (done.status, done.succeeded, done.failed) == (GroupStatus.COMPLETE, 2, 1)
    assert done.callback_ids == (callback_execution_id(group.id, CallbackKind.ON_COMPLETE),)


def test_a_member_retried_then_succeeding_counts_once_it_succeeded(memory: str, log: Path) -> None:
    group = enqueue_group(
        [(tasks.flaky, (2,), {}), (tasks.echo, (), {})], on_success=callbacks(log)["on_success"]
    )
    runner = TaskRunner()
    runner.run_all(include_retries=False)  # echo done, flaky failed once: READY again
    assert get_group(group.id).status == GroupStatus.OPEN
    assert lines(log) == []
    runner.run_all()
    assert lines(log) == [f"success {group.id} 2 2 0"]


def test_duplicate_deliveries_after_completion_enqueue_nothing_more(memory: str, log: Path) -> None:
    group = enqueue_group(tasks.noop, [((), {})] * 3, **callbacks(log))
    TaskRunner().run_all()
    backend: Any = task_backends["default"]
    before = backend.executions.count()
    for member in group.members:
        for _ in range(5):
            Attempt(backend, member.id, worker_id="duplicate").run()  # refused: finished
    TaskRunner().run_all()
    assert backend.executions.count() == before
    assert len(lines(log)) == 2


def test_a_lost_check_is_made_by_a_duplicate_delivery(
    memory: str, log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = enqueue_group(tasks.noop, [((), {})] * 3, **callbacks(log))
    finish_members_without_checks(monkeypatch)
    backend: Any = task_backends["default"]
    assert backend.groups.get(group.id).status == GroupStatus.OPEN
    Attempt(backend, group.members[1].id, worker_id="redelivery").run()
    assert backend.groups.get(group.id).status == GroupStatus.COMPLETE
    TaskRunner().run_all()
    assert len(lines(log)) == 2


def test_a_lost_check_is_made_by_the_sweeper(
    memory: str, log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = enqueue_group(tasks.noop, [((), {})] * 3, **callbacks(log))
    finish_members_without_checks(monkeypatch)
    backend: Any = task_backends["default"]
    assert sweep_groups(backend) == 0  # younger than the grace: left to its members
    assert sweep_groups(backend, grace=timedelta(0)) == 1
    assert sweep_groups(backend, grace=timedelta(0)) == 0  # not OPEN
    TaskRunner().run_all()
    assert sorted(lines(log)) == [f"complete {group.id} 3 3 0", f"success {group.id} 3 3 0"]


def test_a_lost_check_is_made_by_the_next_reader(
    memory: str, log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = enqueue_group(tasks.noop, [((), {})] * 2, **callbacks(log))
    finish_members_without_checks(monkeypatch)
    assert get_group(group.id).status == GroupStatus.COMPLETE
    TaskRunner().run_all()
    assert len(lines(log)) == 2


def test_concurrent_checks_of_a_finished_group_complete_it_once(
    memory: str, log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = enqueue_group(tasks.noop, [((), {})] * 4, **callbacks(log))
    finish_members_without_checks(monkeypatch)
    backend: Any = task_backends["default"]
    barrier = threading.Barrier(20)
    won: list[bool] = []

    def check() -> None:
        barrier.wait()
        written = check_group(backend, group.id, size=4)
        won.append(written is not None and written.status == GroupStatus.COMPLETE)

    threads = [threading.Thread(target=check) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 20
    assert won.count(True) >= 1  # the winner; a late checker may see it COMPLETE too
    TaskRunner().run_all()
    assert sorted(lines(log)) == [f"complete {group.id} 4 4 0", f"success {group.id} 4 4 0"]


def test_cancelling_the_last_unfinished_member_completes_the_group(memory: str, log: Path) -> None:
    group = enqueue_group(tasks.noop, [((), {})] * 2, **callbacks(log))
    backend: Any = task_backends["default"]
    Attempt(backend, group.members[0].id, worker_id="w").run()
    cancel_task(group.members[1])
    assert get_group(group.id).status == GroupStatus.COMPLETE
    TaskRunner().run_all()
    assert lines(log) == [f"complete {group.id} 2 1 1"]


def test_finishing_members_never_write_the_group_document(memory: str, log: Path) -> None:
    group = enqueue_group(tasks.noop, [((), {})] * 10, **callbacks(log))
    backend: Any = task_backends["default"]
    counted: OpCounts = enable_counting()
    counted.reset()
    try:
        backend.__dict__.pop("groups", None)  # a store created now counts
        for member in group.members[:9]:
            Attempt(backend, member.id, worker_id="w").run()
        before_last = counted.as_dict()
        Attempt(backend, group.members[9].id, worker_id="w").run()
        last = counted.as_dict()
    finally:
        disable_counting()
        counted.reset()
    # Each of the first nine: one count aggregation for its group, no group read or write.
    assert before_last["queries"] == 9
    # The last: its count, the group read, the succeeded count, one commit (2 callbacks
    # created + the group closed).
    assert last["queries"] - before_last["queries"] == 2
    assert last["commits"] - before_last["commits"] == 1
    assert backend.groups.get(group.id).status == GroupStatus.COMPLETE


def test_members_and_callbacks_are_checked_before_anything_is_written(
    memory: str, log: Path
) -> None:
    backend: Any = task_backends["default"]
    with pytest.raises(NotJSONSerializable, match="Call 1"):
        enqueue_group(tasks.echo, [((1,), {}), ((object(),), {})])
    with pytest.raises(NotJSONSerializable):
        enqueue_group(tasks.echo, [((1,), {})], on_complete=(tasks.record_group, [object()], {}))
    with pytest.raises(InvalidTask, match="one backend"):
        enqueue_group([(tasks.echo, (), {}), (tasks.echo.using(backend="jobs"), (), {})])
    with pytest.raises(TypeError, match="Member 0"):
        enqueue_group([(tasks.echo, ())])
    with pytest.raises(InvalidTask, match="Member 1 has a unique_key"):
        enqueue_group([(tasks.echo, (), {}), (tasks.echo.using(unique_key="k"), (), {})])
    with pytest.raises(ValueError, match="at least one member"):
        enqueue_group(tasks.echo, [])
    assert backend.executions.count() == 0
    assert backend.groups.open_groups(created_before=backend.groups.clock.now(), limit=10) == []
    with pytest.raises(GroupNotFound):
        get_group("no-such-group")


def age(backend: Any, group_id: str, by: timedelta) -> None:
    """Move a group's creation back by ``by`` (relative to the store's clock)."""
    created = backend.groups.clock.now() - by
    backend.groups.documents.update(
        backend.groups.collection_name, group_id, {"created_at": created}
    )


def test_a_group_with_a_member_deleted_unfinished_is_abandoned_once_old(
    memory: str, log: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backend: Any = task_backends["default"]
    group = enqueue_group(tasks.noop, [((), {})] * 3, **callbacks(log))
    backend.executions.delete(group.members[0].id)  # e.g. from the admin, still READY
    TaskRunner().run_all()
    assert sweep_groups(backend, grace=timedelta(0)) == 0
    assert backend.groups.get(group.id).status == GroupStatus.OPEN  # maybe still enqueueing
    age(backend, group.id, GROUP_ENQUEUE_DEADLINE + timedelta(minutes=1))
    with caplog.at_level("WARNING", logger="django_tasks_fs.group_completion"):
        assert sweep_groups(backend, grace=timedelta(0)) == 0
    abandoned = backend.groups.get(group.id)
    assert abandoned.status == GroupStatus.ABANDONED
    assert abandoned.expires_at is not None  # kept as long as a failed execution
    assert "2 of its 3 members exist" in caplog.text
    assert group.id in caplog.text
    # No longer OPEN: not counted at every sweep, and its callbacks never run.
    assert backend.groups.open_groups(created_before=backend.groups.clock.now(), limit=10) == []
    TaskRunner().run_all()
    assert lines(log) == []


def test_an_old_group_whose_members_all_exist_and_still_run_stays_open(
    memory: str, log: Path
) -> None:
    backend: Any = task_backends["default"]
    group = enqueue_group(tasks.noop, [((), {})] * 2, **callbacks(log))
    age(backend, group.id, GROUP_ENQUEUE_DEADLINE + timedelta(minutes=1))
    assert sweep_groups(backend, grace=timedelta(0)) == 0
    assert backend.groups.get(group.id).status == GroupStatus.OPEN
    TaskRunner().run_all()
    assert get_group(group.id).status == GroupStatus.COMPLETE
    assert len(lines(log)) == 2


def test_an_interrupted_enqueue_group_is_abandoned_by_the_sweeper(
    memory: str, log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend: Any = task_backends["default"]

    def killed(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt  # the process died between the group and its members

    monkeypatch.setattr(backend, "enqueue_many", killed)
    with pytest.raises(KeyboardInterrupt):
        enqueue_group(tasks.noop, [((), {})] * 2, **callbacks(log))
    monkeypatch.undo()
    [group] = backend.groups.open_groups(created_before=backend.groups.clock.now(), limit=10)
    age(backend, group.id, GROUP_ENQUEUE_DEADLINE + timedelta(minutes=1))
    sweep_groups(backend, grace=timedelta(0))
    assert backend.groups.get(group.id).status == GroupStatus.ABANDONED


def test_enqueue_group_failing_on_an_outage_abandons_the_group(
    memory: str, log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend: Any = task_backends["default"]

    def unavailable(*args: Any, **kwargs: Any) -> None:
        raise StoreUnavailable("Firestore unreachable", enqueued=[], not_enqueued=[0, 1])

    monkeypatch.setattr(backend, "enqueue_many", unavailable)
    with pytest.raises(StoreUnavailable):
        enqueue_group(tasks.noop, [((), {})] * 2, **callbacks(log))
    [group] = backend.groups.documents.query(
        Query(collection=backend.groups.collection_name, filters=())
    )
    assert group.data is not None
    assert group.data["status"] == GroupStatus.ABANDONED
    assert group.data["expires_at"] is not None


def test_the_async_twins(memory: str, log: Path) -> None:
    group = async_to_sync(aenqueue_group)(
        tasks.noop, [((), {})], on_complete=callbacks(log)["on_complete"]
    )
    assert group.size == 1
    assert async_to_sync(group.arefresh)().status == GroupStatus.OPEN


def test_run_tasks_sweeps_groups_once_a_sweep_is_due(
    memory: str, log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django_tasks_fs import group_completion
    from django_tasks_fs.worker import loop
    from tests.unit.test_worker_feeds import burst_worker

    group = enqueue_group(tasks.noop, [((), {})] * 2, **callbacks(log))
    finish_members_without_checks(monkeypatch)
    monkeypatch.setattr(
        loop,
        "sweep_groups",
        lambda backend: group_completion.sweep_groups(backend, grace=timedelta(0)),
    )
    backend: Any = task_backends["default"]
    worker = burst_worker(backend, monkeypatch, max_workers=1, batch_size=4, listen=False)
    state = loop._LoopState()
    assert state.next_group_sweep > 0  # not at start-up: a minute later
    worker._step(state)
    assert backend.groups.get(group.id).status == GroupStatus.OPEN
    state.next_group_sweep = 0.0
    worker._step(state)
    assert backend.groups.get(group.id).status == GroupStatus.COMPLETE
    for _ in range(50):  # the worker runs the callbacks
        worker._step(state)
        if worker.handout.stats.finished == 2:
            break
    state.next_group_sweep = 0.0
    worker._step(state)  # a sweep: something ran since the last one
    # Nothing ran here since: the next sweep waits for the idle interval.
    later = enqueue_group(tasks.noop, [((), {})], **callbacks(log))
    finish_members_without_checks(monkeypatch)
    monkeypatch.setattr(
        loop,
        "sweep_groups",
        lambda backend: group_completion.sweep_groups(backend, grace=timedelta(0)),
    )
    state.next_group_sweep = 0.0
    worker._step(state)
    assert backend.groups.get(later.id).status == GroupStatus.OPEN
    state.next_group_sweep = 0.0
    state.last_group_sweep -= loop.GROUP_SWEEP_IDLE_INTERVAL
    worker._step(state)
    assert backend.groups.get(later.id).status == GroupStatus.COMPLETE
