"""Unique enqueue: one unfinished execution per key, taken over once it finished (or its
key document was left by a crash), the throttle window, enqueue_many, and 50 concurrent
enqueues of one key on both stores (the emulator's run is the one marked firestore)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.tasks import TaskResultStatus
from django.tasks.exceptions import InvalidTask
from django.tasks.signals import task_enqueued

from django_tasks_fs import StoreUnavailable, cancel_task, enqueue_many
from django_tasks_fs.store import TaskExecution
from django_tasks_fs.store.ops import OpCounts, memory_database
from django_tasks_fs.store.ops.counting import disable_counting, enable_counting
from django_tasks_fs.store.unique_keys import unique_key_id
from django_tasks_fs.testing.runner import TaskRunner
from tests import tasks

SYNC = "tests.tasks.sync_user"


def stored(backend: Any) -> list[TaskExecution]:
    return list(backend.executions.page(limit=5000).items)


def holder(backend: Any, key: str, task_path: str = SYNC) -> str | None:
    return backend.unique_keys.holder_id(backend.alias, task_path, key)  # type: ignore[no-any-return]


def test_a_second_enqueue_while_ready_returns_the_first(backend: Any) -> None:
    sent: list[Any] = []
    task_enqueued.connect(lambda **kw: sent.append(kw["task_result"]), weak=False)
    try:
        first = tasks.sync_user.enqueue(7)
        again = tasks.sync_user.enqueue(7, path="ignored")  # the key only looks at user_id
    finally:
        task_enqueued.receivers.clear()
    assert again.id == first.id
    assert (again.args, again.kwargs) == ([7], {})  # the first call's arguments
    assert [r.id for r in sent] == [first.id]  # nothing enqueued the second time
    assert [e.id for e in stored(backend)] == [first.id]
    assert holder(backend, "sync:7") == first.id


def test_other_keys_and_other_tasks_are_independent(backend: Any) -> None:
    one, two = tasks.sync_user.enqueue(1), tasks.sync_user.enqueue(2)
    echo = tasks.echo.using(unique_key="sync:1").enqueue()
    echo_again = tasks.echo.using(unique_key="sync:1").enqueue()
    assert len({one.id, two.id, echo.id}) == 3
    assert echo_again.id == echo.id
    assert len(stored(backend)) == 3


def test_the_key_is_released_when_the_execution_finishes(backend: Any) -> None:
    first = tasks.sync_user.enqueue(7)
    assert [r.id for r in TaskRunner().run_all(backend="default")] == [first.id]
    first.refresh()
    assert first.status == TaskResultStatus.SUCCESSFUL
    second = tasks.sync_user.enqueue(7)
    assert second.id != first.id
    assert holder(backend, "sync:7") == second.id
    assert tasks.sync_user.enqueue(7).id == second.id


def test_a_running_execution_holds_its_key(backend: Any) -> None:
    first = tasks.sync_user.enqueue(7)
    claimed = backend.executions.claim(
        first.id, worker_id="w1", lease_duration=timedelta(minutes=1)
    )
    assert claimed is not None
    assert backend.executions.get(first.id).status == TaskResultStatus.RUNNING
    assert tasks.sync_user.enqueue(7).id == first.id


def test_a_cancelled_execution_releases_its_key(backend: Any) -> None:
    first = tasks.sync_user.enqueue(7)
    cancel_task(first.id)
    assert backend.executions.get(first.id).status == TaskResultStatus.FAILED
    assert tasks.sync_user.enqueue(7).id != first.id


def test_a_key_left_without_its_execution_is_taken_over(backend: Any) -> None:
    """A key whose execution is missing (a crash or a purge): the next enqueue takes it."""
    collection = backend.executions.settings.unique_keys_collection
    now = datetime(2026, 1, 1, tzinfo=UTC)
    backend.executions.documents.create(
        collection,
        unique_key_id("default", SYNC, "sync:7"),
        {"key": "sync:7", "backend": "default", "task_path": SYNC, "execution_id": "gone",
         "enqueued_at": now, "held_until": None, "expires_at": None},
    )  # fmt: skip
    result = tasks.sync_user.enqueue(7)
    assert result.id != "gone"
    assert holder(backend, "sync:7") == result.id
    assert [e.id for e in stored(backend)] == [result.id]


def test_a_commit_applied_before_its_answer_was_lost_is_its_own(backend: Any) -> None:
    """Retried after an outage, the commit finds the key naming its own execution: created."""
    execution = backend.build_execution(tasks.sync_user, (7,), {})
    keys = backend.unique_keys
    assert keys.create(execution, key="sync:7").created
    again = keys.create(execution, key="sync:7")  # the same commit, sent again
    assert again.created
    assert again.execution.id == execution.id
    assert again.execution.update_time is not None


def test_an_outage_says_whether_the_commit_may_land(
    backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    documents = backend.executions.documents

    def unanswered(writes: Any) -> Any:
        raise StoreUnavailable("Firestore did not answer.")

    monkeypatch.setattr(documents, "commit", unanswered)
    with pytest.raises(StoreUnavailable, match="may still be applied") as caught:
        tasks.sync_user.enqueue(7)
    assert caught.value.maybe_written
    assert caught.value.execution_id
    monkeypatch.undo()

    held = tasks.sync_user.enqueue(7)
    monkeypatch.setattr(documents, "get", lambda *a, **k: unanswered([]))
    with pytest.raises(StoreUnavailable) as caught:  # the key's read, after a refused commit
        tasks.sync_user.enqueue(7)
    assert not caught.value.maybe_written
    assert caught.value.execution_id not in ("", held.id)
    monkeypatch.undo()
    assert [e.id for e in stored(backend)] == [held.id]


def test_the_throttle_window_holds_the_key_after_the_finish(backend: Any) -> None:
    where = backend.executions.settings
    database = memory_database(where.resolved_project(), where.database)
    offset = timedelta(0)
    database.clock = lambda: datetime.now(UTC) + offset
    task = tasks.sync_user.using(unique_for=timedelta(hours=1))
    first = task.enqueue(7)
    TaskRunner().run_all(backend="default")
    assert backend.executions.get(first.id).status == TaskResultStatus.SUCCESSFUL
    assert task.enqueue(7).id == first.id  # finished, but within the hour
    offset = timedelta(hours=2)
    later = task.enqueue(7)
    assert later.id != first.id
    assert holder(backend, "sync:7") == later.id


def test_aenqueue_is_unique_too(backend: Any) -> None:
    first = async_to_sync(tasks.sync_user.aenqueue)(3)
    assert async_to_sync(tasks.sync_user.aenqueue)(3).id == first.id


def test_enqueue_many_takes_a_key_per_call(backend: Any) -> None:
    held = tasks.sync_user.enqueue(9)
    results = enqueue_many(tasks.sync_user, [((1,), {}), ((2,), {}), ((1,), {}), ((9,), {})])
    assert results[2].id == results[0].id
    assert results[3].id == held.id
    assert len({r.id for r in results}) == 3
    assert len(stored(backend)) == 3
    ran = TaskRunner().run_all(backend="default")
    assert sorted(r.id for r in ran) == sorted({held.id, results[0].id, results[1].id})


def test_bad_unique_options_are_refused() -> None:
    with pytest.raises(InvalidTask, match="unique_key must be a non-empty string"):
        tasks.echo.using(unique_key="")
    with pytest.raises(InvalidTask, match="unique_for needs a unique_key"):
        tasks.echo.using(unique_for=timedelta(minutes=1))
    with pytest.raises(InvalidTask, match="unique_for must be a positive timedelta"):
        tasks.echo.using(unique_key="k", unique_for=timedelta(0))


def test_a_key_function_must_return_a_string(backend: Any) -> None:
    task = tasks.echo.using(unique_key=lambda *args: None)
    with pytest.raises(InvalidTask, match="returned None, not a non-empty string"):
        task.enqueue(1)
    with pytest.raises(InvalidTask, match=r"Call 1: .*returned None"):
        enqueue_many(
            tasks.echo.using(unique_key=lambda n: None if n else "k"), [((0,), {}), ((1,), {})]
        )
    assert stored(backend) == []


def test_what_a_unique_enqueue_costs(backend: Any) -> None:
    """New key: one commit of two writes (key and execution). Key held: a refused commit
    and two reads (key, holder), no write. Taken over: both, and two writes."""
    counts = enable_counting()
    try:
        backend.__dict__.pop("executions", None)  # a store created now counts
        backend.__dict__.pop("unique_keys", None)
        backend.executions.clock.now()  # learn the server's time first (one read)
        counts.reset()
        first = tasks.sync_user.enqueue(7)
        new = counts.as_dict()
        counts.reset()
        tasks.sync_user.enqueue(7)
        hit = counts.as_dict()
        backend.executions.delete(first.id)
        counts.reset()
        tasks.sync_user.enqueue(7)
        takeover = counts.as_dict()
    finally:
        disable_counting()
        backend.__dict__.pop("executions", None)
        backend.__dict__.pop("unique_keys", None)
    assert new == OpCounts(writes=2, commits=1, rpcs=1).as_dict()
    assert hit == OpCounts(reads=2, billed_reads=2, commits=1, rpcs=3).as_dict()
    assert takeover == OpCounts(writes=2, reads=2, billed_reads=2, commits=2, rpcs=4).as_dict()


def test_running_a_unique_task_costs_what_a_plain_one_costs(backend: Any) -> None:
    """Release is lazy: claiming and finishing write nothing for the key."""
    counts = enable_counting()
    try:
        backend.__dict__.pop("executions", None)  # a store created now counts
        backend.__dict__.pop("unique_keys", None)
        spent = []
        for task in (tasks.echo, tasks.echo.using(unique_key="k")):
            task.enqueue(1)
            counts.reset()
            assert len(TaskRunner().run_all(backend="default")) == 1
            spent.append(counts.as_dict())
    finally:
        disable_counting()
        backend.__dict__.pop("executions", None)
        backend.__dict__.pop("unique_keys", None)
    plain, unique = spent
    assert plain["writes"] > 0
    assert unique == plain


@pytest.mark.parametrize(
    "store", ["memory", pytest.param("firestore", marks=pytest.mark.firestore)]
)
def test_fifty_concurrent_enqueues_of_one_key_make_one_execution(backend: Any, store: str) -> None:
    assert backend.executions.settings.store == store
    barrier = threading.Barrier(50)
    ids: list[str] = []
    errors: list[BaseException] = []

    def enqueue() -> None:
        try:
            barrier.wait()
            ids.append(tasks.sync_user.enqueue(42).id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=enqueue) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(ids) == 50
    assert len(set(ids)) == 1
    assert [e.id for e in stored(backend)] == ids[:1]
    assert holder(backend, "sync:42") == ids[0]
