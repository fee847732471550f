"""enqueue_many(): the checks of enqueue() for every call first, then batched commits,
then one dispatch per execution; on the in-memory store (no emulator)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.tasks import TaskResultStatus, task_backends
from django.tasks.exceptions import InvalidTask
from django.tasks.signals import task_enqueued
from django.utils import timezone

from django_tasks_fs import aenqueue_many, enqueue_many
from django_tasks_fs.exceptions import (
    MissingCloudResource,
    NotJSONSerializable,
    PayloadTooLarge,
    StoreUnavailable,
    UnknownBackend,
)
from django_tasks_fs.gcp.resources import CloudResource, Kind
from django_tasks_fs.store import DispatchState, TaskExecution
from django_tasks_fs.store.ops import OpCounts
from django_tasks_fs.store.ops.counting import disable_counting, enable_counting
from django_tasks_fs.testing.runner import TaskRunner
from tests import tasks

HUGE = "x" * 1_100_000  # past Firestore's 1 MiB document limit


def stored(backend: Any) -> list[TaskExecution]:
    return list(backend.executions.page(limit=5000).items)


def test_results_come_back_in_order_with_each_calls_arguments(backend: Any) -> None:
    calls = [((i, [i]), {"n": i}) for i in range(7)]
    results = enqueue_many(tasks.echo, calls)
    assert [(r.args, r.kwargs) for r in results] == [([i, [i]], {"n": i}) for i in range(7)]
    assert {r.status for r in results} == {TaskResultStatus.READY}
    assert len({r.id for r in results}) == 7
    for result, (args, kwargs) in zip(results, calls, strict=True):
        execution = backend.executions.get(result.id)
        assert (execution.args, execution.kwargs) == (list(args), kwargs)
        assert tasks.echo.get_result(result.id).status == TaskResultStatus.READY


def test_the_tasks_options_apply_to_every_call(backend: Any) -> None:
    later = timezone.now() + timedelta(hours=1)
    task = tasks.noop.using(queue_name="emails", priority=7, run_after=later)
    results = backend.enqueue_many(task, [((), {})] * 3)
    for execution in (backend.executions.get(r.id) for r in results):
        assert (execution.queue_name, execution.priority, execution.run_after) == (
            "emails",
            7,
            later,
        )
    assert backend.executions.ready(backend="default") == []  # deferred, all of them


def test_no_calls_write_nothing(backend: Any) -> None:
    assert enqueue_many(tasks.noop, []) == []
    assert enqueue_many(tasks.noop, iter(())) == []
    assert stored(backend) == []


@pytest.mark.parametrize(
    ("calls", "error", "message"),
    [
        ([((1,), {}), ((object(),), {})], NotJSONSerializable, "Call 1: "),
        ([((1,), {}), ((), {"k": {1, 2}})], NotJSONSerializable, "Call 1: "),
        ([((1,), {}), ((1,), {}), ((HUGE,), {})], PayloadTooLarge, "Call 2: "),
        ([((1,), {}), (1, 2, 3)], TypeError, "Call 1 must be an (args, kwargs) pair"),
        ([((1,), {}), ("ab", {})], TypeError, "Call 1 must be an (args, kwargs) pair"),
    ],
)
def test_one_bad_call_refuses_them_all_and_writes_nothing(
    backend: Any, calls: list[Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as raised:
        enqueue_many(tasks.echo, calls)
    assert str(raised.value).startswith(message)
    assert stored(backend) == []


def test_an_invalid_task_is_refused_before_writing(backend: Any) -> None:
    with pytest.raises(InvalidTask, match="Queue 'nope' is not valid"):
        enqueue_many(tasks.noop.using(queue_name="nope"), [((), {})])
    assert stored(backend) == []


def test_a_task_of_another_kind_of_backend_is_refused(settings: Any) -> None:
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    with pytest.raises(UnknownBackend, match="is a DummyBackend"):
        enqueue_many(tasks.noop, [((), {})])


def test_task_enqueued_is_sent_once_per_result_in_order(backend: Any) -> None:
    seen: list[str] = []

    def receiver(sender: Any, task_result: Any, **kwargs: Any) -> None:
        assert sender is type(backend)
        seen.append(task_result.id)

    task_enqueued.connect(receiver)
    try:
        results = enqueue_many(tasks.noop, [((), {})] * 5)
    finally:
        task_enqueued.disconnect(receiver)
    assert seen == [r.id for r in results]


def test_the_async_twin(backend: Any) -> None:
    results = async_to_sync(aenqueue_many)(tasks.echo, [((1,), {}), ((2,), {})])
    assert [r.args for r in results] == [[1], [2]]


def test_the_runner_runs_what_was_enqueued_in_bulk(backend: Any) -> None:
    results = enqueue_many(tasks.echo, [((i,), {}) for i in range(30)])
    ran = TaskRunner().run_all(backend="default")
    assert sorted(r.id for r in ran) == sorted(r.id for r in results)
    for result in results:
        result.refresh()
        assert result.status == TaskResultStatus.SUCCESSFUL
        assert result.return_value == {"args": result.args, "kwargs": {}}


# -- commits --------------------------------------------------------------------------


@pytest.fixture
def counts(settings: Any) -> Iterator[OpCounts]:
    """A ProcessBackend on a fresh in-memory project, its Firestore operations counted."""
    settings.TASKS = {
        "default": {
            "BACKEND": "django_tasks_fs.backends.ProcessBackend",
            "OPTIONS": {"project_id": f"bulk-{uuid.uuid4().hex[:8]}", "store": "memory"},
        }
    }
    counted = enable_counting()
    counted.reset()
    try:
        yield counted
    finally:
        disable_counting()
        counted.reset()


def test_1200_tasks_cost_1200_writes_in_3_commits(counts: OpCounts) -> None:
    results = enqueue_many(tasks.echo, [((i,), {}) for i in range(1200)])
    assert len(results) == 1200
    # The store's one read of the server's time (ServerClock), then 500 + 500 + 200.
    assert counts.as_dict() == {
        "writes": 1200,
        "reads": 1,
        "billed_reads": 1,
        "queries": 0,
        "listens": 0,
        "commits": 3,
        "conflicts": 0,
        "rpcs": 4,
    }


def test_large_documents_split_commits_by_size(counts: OpCounts) -> None:
    big = "x" * 900_000  # under 1 MiB each; ten of them pass the 10 MiB request limit
    enqueue_many(tasks.echo, [((big,), {}) for _ in range(12)])
    assert counts.writes == 12
    assert counts.commits == 2  # 9 documents (about 8 MiB), then 3


def _failing_commit(
    backend: Any, monkeypatch: pytest.MonkeyPatch, *, fail: int, together: int = 1
) -> list[int]:
    """Make the commit of the batch starting at call ``fail`` (``args == [fail]``) raise
    StoreUnavailable; the first ``together`` commits wait for each other before going on
    (all of them in flight at once). Returns the first call of each commit sent."""
    store = backend.executions
    real = store.create_batch
    sent: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(together, timeout=30) if together > 1 else None

    def create_batch(batch: Any, **kwargs: Any) -> list[TaskExecution]:
        first = batch.documents[0][0]
        with lock:
            sent.append(first.args[0])
            waits = barrier is not None and len(sent) <= together
        if waits:
            assert barrier is not None
            barrier.wait()
        if first.args == [fail]:
            raise StoreUnavailable("Firestore is unreachable.", execution_id=first.id)
        return list(real(batch, **kwargs))

    monkeypatch.setattr(store, "create_batch", create_batch)
    return sent


def test_a_failed_middle_commit_leaves_the_others_written(
    backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commits 0-499, 500-999 and 1000-1199 in flight together; the middle one fails."""
    monkeypatch.setattr(backend, "commit_concurrency", 4)
    sent = _failing_commit(backend, monkeypatch, fail=500, together=3)
    with pytest.raises(StoreUnavailable) as raised:
        enqueue_many(tasks.echo, [((i,), {}) for i in range(1200)])
    assert sorted(sent) == [0, 500, 1000]
    error = raised.value
    expected = [*range(500), *range(1000, 1200)]
    assert [r.args for r in error.enqueued] == [[i] for i in expected]  # call order
    assert error.not_enqueued == list(range(500, 1000))
    assert "700 of 1200 calls were enqueued" in str(error)
    assert "calls 500-999 were not" in str(error)
    assert error.maybe_written is False
    assert sorted(e.id for e in stored(backend)) == sorted(r.id for r in error.enqueued)
    assert error.execution_id not in {r.id for r in error.enqueued}


def test_retrying_the_calls_not_enqueued_enqueues_each_call_once(
    backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = [((i,), {}) for i in range(1200)]
    _failing_commit(backend, monkeypatch, fail=500, together=3)
    with pytest.raises(StoreUnavailable) as raised:
        enqueue_many(tasks.echo, calls)
    monkeypatch.undo()  # Firestore is back
    enqueue_many(tasks.echo, [calls[i] for i in raised.value.not_enqueued])
    assert sorted(e.args[0] for e in stored(backend)) == list(range(1200))


def test_after_a_failed_commit_the_commits_not_started_are_not_sent(
    backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One commit at a time: the second fails, the third is never sent (an outage
    would make it wait its whole timeout too)."""
    monkeypatch.setattr(backend, "commit_concurrency", 1)
    sent = _failing_commit(backend, monkeypatch, fail=500)
    with pytest.raises(StoreUnavailable) as raised:
        enqueue_many(tasks.echo, [((i,), {}) for i in range(1200)])
    assert sent == [0, 500]
    error = raised.value
    assert [r.args for r in error.enqueued] == [[i] for i in range(500)]
    assert error.not_enqueued == list(range(500, 1200))
    assert "500 of 1200 calls were enqueued" in str(error)
    assert sorted(e.id for e in stored(backend)) == sorted(r.id for r in error.enqueued)


def test_commits_run_concurrently_within_the_bound(
    backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    bound = 2
    monkeypatch.setattr(backend, "commit_concurrency", bound)
    store = backend.executions
    real = store.create_batch
    lock = threading.Lock()
    in_flight, most, sent = 0, 0, 0
    together = threading.Barrier(bound, timeout=30)  # the first `bound` wait for each other

    def create_batch(batch: Any, **kwargs: Any) -> list[TaskExecution]:
        nonlocal in_flight, most, sent
        with lock:
            in_flight += 1
            most = max(most, in_flight)
            sent += 1
            first_wave = sent <= bound
        if first_wave:
            together.wait()
        try:
            return list(real(batch, **kwargs))
        finally:
            with lock:
                in_flight -= 1

    monkeypatch.setattr(store, "create_batch", create_batch)
    results = enqueue_many(tasks.echo, [((i,), {}) for i in range(2100)])
    assert (most, sent) == (bound, 5)
    assert [r.args for r in results] == [[i] for i in range(2100)]
    assert len(stored(backend)) == 2100


# -- Google Cloud backends: dispatch (the sends are faked; tests/e2e sends for real) --


@pytest.fixture
def cloud(tasks_project: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    backend: Any = task_backends["cloud"]
    monkeypatch.setattr(backend, "platform_max_attempts", lambda queue: 3)
    return backend


def test_sends_run_concurrently_within_the_bound(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    bound = 4
    monkeypatch.setattr(cloud, "dispatch_concurrency", bound)
    lock = threading.Lock()
    in_flight, most, sent = 0, 0, []
    # Each of the first sends waits until `bound` of them are in flight together.
    together = threading.Barrier(bound, timeout=30)

    def send(execution: TaskExecution, *, resend: bool = False) -> dict[str, str]:
        nonlocal in_flight, most
        with lock:
            in_flight += 1
            most = max(most, in_flight)
            sent.append(execution.id)
            first_wave = len(sent) <= bound
        if first_wave:
            together.wait()
        with lock:
            in_flight -= 1
        return {"cloud_task_name": f"tasks/{execution.id}"}

    monkeypatch.setattr(cloud, "send", send)
    results = cloud.enqueue_many(tasks.noop.using(backend="cloud"), [((), {})] * 20)
    assert most == bound
    assert sorted(sent) == sorted(r.id for r in results)
    assert len(sent) == 20


def test_a_failed_send_leaves_that_execution_pending_for_the_sweeper(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[str] = []

    def send(execution: TaskExecution, *, resend: bool = False) -> dict[str, str]:
        sent.append(execution.id)
        if execution.args == [3]:
            raise RuntimeError("Cloud Tasks said no")
        return {"cloud_task_name": f"tasks/{execution.id}"}

    monkeypatch.setattr(cloud, "send", send)
    results = enqueue_many(tasks.echo.using(backend="cloud"), [((i,), {}) for i in range(8)])
    assert sorted(sent) == sorted(r.id for r in results)
    for result in results:
        execution = cloud.executions.get(result.id)
        if result.args == [3]:
            assert execution.dispatch_state == DispatchState.PENDING
            assert execution.dispatch_error == "RuntimeError: Cloud Tasks said no"
        else:
            assert execution.dispatch_error is None
        assert result.status == TaskResultStatus.READY


def test_a_missing_queue_refuses_before_writing(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = CloudResource(kind=Kind.QUEUE, project="p", location="l", name="default")

    def missing(name: str) -> int:
        raise queue.missing()

    monkeypatch.setattr(cloud, "platform_max_attempts", missing)
    monkeypatch.setattr(cloud, "send", lambda *a, **k: pytest.fail("nothing may be sent"))
    with pytest.raises(MissingCloudResource) as raised:
        enqueue_many(tasks.noop.using(backend="cloud"), [((), {})] * 3)
    assert raised.value.execution_id == ""
    assert stored(cloud) == []
