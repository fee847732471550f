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


def test_a_failed_commit_reports_the_calls_enqueued_before_it(
    backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = backend.executions
    real = store.create_batch
    made: list[int] = []

    def create_batch(batch: Any, **kwargs: Any) -> list[TaskExecution]:
        made.append(len(batch.documents))
        if len(made) == 2:
            first = batch.documents[0][0].id
            raise StoreUnavailable("Firestore is unreachable.", execution_id=first)
        return list(real(batch, **kwargs))

    monkeypatch.setattr(store, "create_batch", create_batch)
    with pytest.raises(StoreUnavailable) as raised:
        enqueue_many(tasks.echo, [((i,), {}) for i in range(700)])
    assert made == [500, 200]
    error = raised.value
    assert "The first 500 of 700 calls were enqueued" in str(error)
    assert [r.args for r in error.enqueued] == [[i] for i in range(500)]
    assert error.maybe_written is False
    assert sorted(e.id for e in stored(backend)) == sorted(r.id for r in error.enqueued)
    assert error.execution_id not in {r.id for r in error.enqueued}


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
