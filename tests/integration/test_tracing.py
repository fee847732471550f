"""OpenTelemetry spans, checked with the SDK's in-memory exporter."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.tasks import task_backends
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from django_tasks_fs import enqueue_many
from django_tasks_fs.execution.attempt import Attempt
from tests import tasks

_EXPORTER = InMemorySpanExporter()
_PROVIDER = TracerProvider()
_PROVIDER.add_span_processor(SimpleSpanProcessor(_EXPORTER))
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    # The API's global provider can be set only once; patch it per test instead.
    monkeypatch.setattr(trace, "get_tracer", _PROVIDER.get_tracer)
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


def by_kind(exporter: InMemorySpanExporter, kind: SpanKind) -> list[Any]:
    return [s for s in exporter.get_finished_spans() if s.kind == kind]


def test_enqueue_and_attempt_make_a_producer_and_a_child_consumer(
    backend: Any, spans: InMemorySpanExporter
) -> None:
    result = tasks.echo.enqueue(1)
    (producer,) = by_kind(spans, SpanKind.PRODUCER)
    assert producer.name == "send default"
    assert producer.attributes["messaging.system"] == "gcp_cloud_tasks"
    assert producer.attributes["messaging.operation.type"] == "send"
    assert producer.attributes["messaging.message.id"] == result.id
    assert producer.attributes["django_tasks_fs.task"] == "tests.tasks.echo"
    stored = backend.executions.get(result.id)
    assert stored.trace_context["traceparent"].split("-")[1] == format(
        producer.context.trace_id, "032x"
    )

    Attempt(
        backend, result.id, worker_id="w"
    ).run()  # the local worker's path: context from the document
    (consumer,) = by_kind(spans, SpanKind.CONSUMER)
    assert consumer.name == "process default"
    assert consumer.parent.span_id == producer.context.span_id
    assert consumer.context.trace_id == producer.context.trace_id
    assert consumer.attributes["messaging.operation.type"] == "process"
    assert consumer.attributes["django_tasks_fs.outcome"] == "succeeded"
    assert consumer.status.status_code == StatusCode.UNSET


def test_a_failure_marks_the_span(backend: Any, spans: InMemorySpanExporter) -> None:
    result = tasks.permanent.enqueue()
    Attempt(backend, result.id, worker_id="w").run()
    (consumer,) = by_kind(spans, SpanKind.CONSUMER)
    assert consumer.status.status_code == StatusCode.ERROR
    assert consumer.attributes["error.type"] == "django_tasks_fs.exceptions.PermanentTaskError"


def test_a_delivery_carrier_wins_over_the_document(
    backend: Any, spans: InMemorySpanExporter
) -> None:
    result = tasks.noop.enqueue()
    Attempt(backend, result.id, worker_id="w", trace_carrier={"traceparent": TRACEPARENT}).run()
    (consumer,) = by_kind(spans, SpanKind.CONSUMER)
    assert format(consumer.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert format(consumer.parent.span_id, "016x") == "b7ad6b7169203331"


def test_cloud_run_jobs_environment_carries_the_context(
    backend: Any, spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = tasks.noop.enqueue()
    monkeypatch.setenv("TRACEPARENT", TRACEPARENT)
    with pytest.raises(SystemExit) as exited:
        call_command("execute_task", result.id, stdout=StringIO())
    assert exited.value.code == 0
    (consumer,) = by_kind(spans, SpanKind.CONSUMER)
    assert format(consumer.parent.span_id, "016x") == "b7ad6b7169203331"


def test_dispatch_sends_the_context(
    tasks_project: str, spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django_tasks_fs.gcp import cloud_run, cloud_tasks

    sent: dict[str, Any] = {}
    monkeypatch.setattr(cloud_tasks, "queue_max_attempts", lambda target, queue: 3)
    monkeypatch.setattr(
        cloud_tasks, "create_http_task", lambda target, **kw: sent.setdefault("tasks", kw) and "t"
    )
    monkeypatch.setattr(cloud_run, "job_max_attempts", lambda target, job: 2)
    monkeypatch.setattr(
        cloud_run, "run_job", lambda target, **kw: sent.setdefault("jobs", kw) and "e"
    )
    tasks.noop.using(backend="cloud").enqueue()
    tasks.noop.using(backend="cloudjobs", queue_name="e2e-job").enqueue()
    assert sent["tasks"]["headers"]["traceparent"].startswith("00-")
    assert sent["jobs"]["env"]["TRACEPARENT"].startswith("00-")
    assert {s.attributes["messaging.system"] for s in by_kind(spans, SpanKind.PRODUCER)} == {
        "gcp_cloud_tasks",
        "gcp_cloud_run_jobs",
    }
    assert task_backends["cloud"].executions.count() == 1  # type: ignore[attr-defined]


def test_enqueue_many_makes_one_producer_span_every_execution_carries(
    backend: Any, spans: InMemorySpanExporter
) -> None:
    results = enqueue_many(tasks.echo, [((i,), {}) for i in range(3)])
    (producer,) = by_kind(spans, SpanKind.PRODUCER)
    assert producer.name == "send default"
    assert producer.attributes["messaging.batch.message_count"] == 3
    assert producer.attributes["messaging.operation.type"] == "send"
    assert "messaging.message.id" not in producer.attributes
    for result in results:
        carried = backend.executions.get(result.id).trace_context["traceparent"]
        assert carried.split("-")[1:3] == [
            format(producer.context.trace_id, "032x"),
            format(producer.context.span_id, "016x"),
        ]
    Attempt(backend, results[1].id, worker_id="w").run()
    (consumer,) = by_kind(spans, SpanKind.CONSUMER)
    assert consumer.parent.span_id == producer.context.span_id
