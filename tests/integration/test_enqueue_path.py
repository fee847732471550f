"""One enqueue path: enqueue(), a cron slot and "Run now" get the same validation,
producer span, dispatch and ``task_enqueued`` signal (FirestoreBackend.submit)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.tasks.exceptions import InvalidTask
from django.tasks.signals import task_enqueued
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from django_tasks_fs import schedule_task
from django_tasks_fs.scheduling.firing import fire_slot, run_now
from django_tasks_fs.store import ExecutionFilter
from tests import tasks

SLOT = datetime(2026, 11, 24, 10, 5, tzinfo=UTC)
_EXPORTER = InMemorySpanExporter()
_PROVIDER = TracerProvider()
_PROVIDER.add_span_processor(SimpleSpanProcessor(_EXPORTER))


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    # The API's global provider can be set only once; patch it per test instead.
    monkeypatch.setattr(trace, "get_tracer", _PROVIDER.get_tracer)
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


@pytest.fixture
def signals() -> Iterator[list[Any]]:
    sent: list[Any] = []

    def receive(sender: Any, task_result: Any, **kwargs: Any) -> None:
        sent.append(task_result)

    task_enqueued.connect(receive)
    yield sent
    task_enqueued.disconnect(receive)


@pytest.fixture
def schedule(backend: Any) -> Any:
    schedule_task(tasks.echo, "*/5 * * * *", name="every-5", args=["tick"], takes_context=False)
    return backend.schedules.update(
        "every-5", lambda s: s.evolve(created_at=SLOT - timedelta(days=1))
    )


def enqueue_schedule(how: str, backend: Any, schedule: Any) -> Any:
    return fire_slot(backend, schedule, SLOT) if how == "slot" else run_now(backend, schedule)


def producers(spans: InMemorySpanExporter, execution_id: str) -> list[Any]:
    return [
        s
        for s in spans.get_finished_spans()
        if s.kind == SpanKind.PRODUCER and s.attributes["messaging.message.id"] == execution_id
    ]


@pytest.mark.parametrize("how", ["slot", "run_now"])
def test_a_schedule_enqueues_like_enqueue(
    backend: Any, schedule: Any, spans: InMemorySpanExporter, signals: list[Any], how: str
) -> None:
    result = enqueue_schedule(how, backend, schedule)
    assert result is not None
    stored = backend.executions.get(result.id)
    assert stored.scheduled_task == "every-5"
    assert stored.args == ["tick"]
    (span,) = producers(spans, result.id)  # the producer span, its context stored for the consumer
    assert stored.trace_context["traceparent"].split("-")[1] == format(
        span.context.trace_id, "032x"
    )
    assert [r.id for r in signals] == [result.id]


def test_a_fired_slot_enqueues_nothing_twice(
    backend: Any, schedule: Any, signals: list[Any]
) -> None:
    assert fire_slot(backend, schedule, SLOT) is not None
    assert fire_slot(backend, schedule, SLOT) is None
    assert len(signals) == 1
    assert backend.executions.count(ExecutionFilter(task_path="tests.tasks.echo")) == 1


def test_run_now_is_not_a_slot(backend: Any, schedule: Any) -> None:
    run_now(backend, schedule)
    assert fire_slot(backend, schedule, SLOT) is not None  # the slot still fires


@pytest.mark.parametrize("how", ["slot", "run_now"])
def test_a_task_the_backend_no_longer_accepts_is_refused_before_writing(
    backend: Any, schedule: Any, how: str
) -> None:
    # The queue was removed from QUEUES after the schedule was made.
    stale = backend.schedules.update("every-5", lambda s: s.evolve(queue_name="gone"))
    with pytest.raises(InvalidTask, match="Queue 'gone' is not valid"):
        enqueue_schedule(how, backend, stale)
    assert backend.executions.count(ExecutionFilter(task_path="tests.tasks.echo")) == 0
    assert backend.schedules.get("every-5").last_slot is None
