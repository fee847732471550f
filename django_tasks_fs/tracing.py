"""OpenTelemetry: a producer span at enqueue, a consumer span per attempt (optional extra).

Install ``django-tasks-fs[otel]`` (the OpenTelemetry API) and configure an SDK to get
spans; without the API everything here is a no-op. The W3C trace context of the
enqueue travels with the execution: in its document (the local worker), in the Cloud
Tasks request headers and in the Cloud Run Jobs environment (``TRACEPARENT``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

try:
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError:  # pragma: no cover - exercised only without the extra
    trace = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from .store import TaskExecution

TRACER_NAME = "django_tasks_fs"
#: Environment variables that carry the context into Cloud Run Jobs (and back out).
ENV_CARRIER = {"traceparent": "TRACEPARENT", "tracestate": "TRACESTATE"}


def _propagate() -> Any:
    """``opentelemetry.propagate``, imported on first use: it loads the configured
    propagators (entry points) as it is imported, a cost a worker's start-up need not pay."""
    from opentelemetry import propagate

    return propagate


class Backend(Protocol):
    """What a span says about the backend (a FirestoreBackend; tracing sits below backends/)."""

    @property
    def alias(self) -> str: ...

    @property
    def messaging_system(self) -> str: ...


def _attributes(backend: Backend, execution: TaskExecution, operation: str) -> dict[str, Any]:
    return {
        "messaging.system": backend.messaging_system,
        "messaging.destination.name": execution.queue_name,
        "messaging.operation.type": operation,
        "messaging.operation.name": "enqueue" if operation == "send" else "execute",
        "messaging.message.id": execution.id,
        "django_tasks_fs.backend": backend.alias,
        "django_tasks_fs.task": execution.task_path,
    }


@contextmanager
def producer_span(backend: Backend, execution: TaskExecution) -> Iterator[dict[str, str]]:
    """Span around an enqueue; yields the W3C carrier to store and send with the execution."""
    if trace is None:
        yield {}
        return
    tracer = trace.get_tracer(TRACER_NAME)
    with tracer.start_as_current_span(
        f"send {execution.queue_name}",
        kind=SpanKind.PRODUCER,
        attributes=_attributes(backend, execution, "send"),
    ):
        carrier: dict[str, str] = {}
        _propagate().inject(carrier)
        yield carrier


@contextmanager
def producer_batch_span(
    backend: Backend, template: TaskExecution, count: int
) -> Iterator[dict[str, str]]:
    """One span around a bulk enqueue of ``count`` executions like ``template`` (same
    task and queue); yields the carrier every one of them stores and sends."""
    if trace is None:
        yield {}
        return
    attributes = _attributes(backend, template, "send")
    del attributes["messaging.message.id"]  # many messages: their count instead
    attributes["messaging.batch.message_count"] = count
    tracer = trace.get_tracer(TRACER_NAME)
    with tracer.start_as_current_span(
        f"send {template.queue_name}", kind=SpanKind.PRODUCER, attributes=attributes
    ):
        carrier: dict[str, str] = {}
        _propagate().inject(carrier)
        yield carrier


@contextmanager
def consumer_span(
    backend: Backend, execution: TaskExecution, carrier: Mapping[str, str] | None = None
) -> Iterator[Any]:
    """Span around one attempt, child of the enqueue's context (from ``carrier`` or the document)."""
    if trace is None:
        yield None
        return
    source = carrier if carrier and carrier.get("traceparent") else execution.trace_context
    parent = _propagate().extract(dict(source or {}))
    tracer = trace.get_tracer(TRACER_NAME)
    with tracer.start_as_current_span(
        f"process {execution.queue_name}",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes={
            **_attributes(backend, execution, "process"),
            "django_tasks_fs.attempt": execution.attempts,
        },
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield span


def record_outcome(span: Any, outcome: str, error_type: str | None = None) -> None:
    """Mark the attempt's span with how it ended."""
    if span is None:
        return
    span.set_attribute("django_tasks_fs.outcome", outcome)
    if error_type:
        span.set_attribute("error.type", error_type)
        span.set_status(Status(StatusCode.ERROR, error_type))


def env_carrier(environ: Mapping[str, str]) -> dict[str, str]:
    """The W3C carrier found in a process environment (Cloud Run Jobs)."""
    return {key: environ[name] for key, name in ENV_CARRIER.items() if environ.get(name)}


def header_carrier(headers: Mapping[str, str]) -> dict[str, str]:
    """The W3C carrier found in HTTP request headers (Cloud Tasks)."""
    return {key: headers[key] for key in ENV_CARRIER if headers.get(key)}


def current_span_ids() -> tuple[str, str, bool] | None:
    """(trace id, span id, sampled) of the current span, in hex (None: no valid span)."""
    if trace is None:
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return (
        format(context.trace_id, "032x"),
        format(context.span_id, "016x"),
        bool(context.trace_flags & 0x01),
    )
