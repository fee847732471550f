"""django_tasks_fs.logging: the log attributes and the Cloud Logging JSON formatter."""

from __future__ import annotations

import json
import logging
import sys
import threading

import pytest

from django_tasks_fs.logging import (
    FIELDS,
    CloudLoggingFormatter,
    TaskAttributes,
    log_context,
    process_attributes,
    task_extra,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


def record(msg: str = "hello %s", *args: object, **extra: object) -> logging.LogRecord:
    made = logging.getLogger("tests.logs").makeRecord(
        "tests.logs", logging.WARNING, "/app/x.py", 12, msg, args or ("world",), None, "fn"
    )
    made.__dict__.update(extra)
    return made


def test_the_json_shape() -> None:
    formatter = CloudLoggingFormatter(project="my-proj")
    line = json.loads(
        formatter.format(record(**task_extra(backend="default", outcome="failed", duration=0.5)))
    )
    assert line["severity"] == "WARNING"
    assert line["message"] == "hello world"
    assert line["time"].endswith("+00:00")
    assert line["logger"] == "tests.logs"
    assert line["logging.googleapis.com/sourceLocation"] == {
        "file": "/app/x.py",
        "line": 12,
        "function": "fn",
    }
    assert line["backend"] == "default"
    assert line["outcome"] == "failed"
    assert line["duration"] == 0.5
    assert "execution_id" not in line  # None is left out
    assert "logging.googleapis.com/trace" not in line  # no trace known


def test_the_trace_comes_from_the_attempts_w3c_context() -> None:
    formatter = CloudLoggingFormatter(project="my-proj")
    with log_context(execution_id="e1", traceparent=f"00-{TRACE}-{SPAN}-01"):
        line = json.loads(formatter.format(record()))
    assert line["logging.googleapis.com/trace"] == f"projects/my-proj/traces/{TRACE}"
    assert line["logging.googleapis.com/spanId"] == SPAN
    assert line["logging.googleapis.com/trace_sampled"] is True
    assert line["execution_id"] == "e1"
    assert "traceparent" not in line


def test_the_trace_of_the_current_opentelemetry_span_wins() -> None:
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    context = SpanContext(
        trace_id=int(TRACE, 16), span_id=int(SPAN, 16), is_remote=False,
        trace_flags=TraceFlags(0),
    )  # fmt: skip
    formatter = CloudLoggingFormatter(project="")
    with (
        log_context(traceparent=f"00-{'1' * 32}-{'2' * 16}-01"),
        trace.use_span(NonRecordingSpan(context)),
    ):
        line = json.loads(formatter.format(record()))
    assert line["logging.googleapis.com/trace"] == TRACE  # no project: the bare id
    assert line["logging.googleapis.com/spanId"] == SPAN
    assert line["logging.googleapis.com/trace_sampled"] is False


def test_a_malformed_traceparent_gives_no_trace() -> None:
    line = json.loads(CloudLoggingFormatter().format(record(traceparent="00-zz-1-01")))
    assert "logging.googleapis.com/trace" not in line


def test_the_project_defaults_to_google_cloud_project(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "env-proj")
    line = json.loads(CloudLoggingFormatter().format(record(traceparent=f"00-{TRACE}-{SPAN}-00")))
    assert line["logging.googleapis.com/trace"] == f"projects/env-proj/traces/{TRACE}"


def test_the_traceback_is_in_the_message() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        made = record()
        made.exc_info = sys.exc_info()
    line = json.loads(CloudLoggingFormatter().format(made))
    assert line["message"].startswith("hello world\nTraceback (most recent call last):")
    assert line["message"].endswith("ValueError: boom")


def test_the_filter_gives_every_record_every_attribute() -> None:
    made = record()
    TaskAttributes().filter(made)
    assert {name: getattr(made, name) for name in FIELDS} == dict.fromkeys(FIELDS)
    with log_context(execution_id="e1", backend="b", worker_id="w"):
        made = record(outcome="succeeded")
        TaskAttributes().filter(made)
    assert (made.execution_id, made.backend, made.worker_id, made.outcome) == (
        "e1", "b", "w", "succeeded",
    )  # fmt: skip


def filtered() -> logging.LogRecord:
    made = record()
    TaskAttributes().filter(made)
    return made


def test_the_process_attributes_reach_every_thread_under_the_context() -> None:
    seen: dict[str, logging.LogRecord] = {}

    def in_a_thread() -> None:  # a thread no context reaches (e.g. a Google client's)
        seen["thread"] = filtered()

    with process_attributes(worker_id="host:1"):
        thread = threading.Thread(target=in_a_thread)
        thread.start()
        thread.join()
        with log_context(worker_id="attempt-w", execution_id="e1"):
            seen["context"] = filtered()
    seen["after"] = filtered()
    assert seen["thread"].worker_id == "host:1"  # type: ignore[attr-defined]
    assert seen["context"].worker_id == "attempt-w"  # type: ignore[attr-defined]
    assert seen["context"].execution_id == "e1"  # type: ignore[attr-defined]
    assert seen["after"].worker_id is None  # type: ignore[attr-defined]


def test_the_records_own_attributes_win_over_the_context() -> None:
    with log_context(execution_id="outer", worker_id="w"):
        extra = task_extra(execution_id="inner")
    assert extra == {"execution_id": "inner", "worker_id": "w"}


def test_only_the_known_attributes_are_taken() -> None:
    with pytest.raises(TypeError, match="Not log attributes: status"):
        task_extra(status="READY")


def test_text_lines_are_unchanged() -> None:
    formatter = logging.Formatter("%(levelname)s %(name)s %(message)s")
    made = record(**task_extra(backend="default"))
    TaskAttributes().filter(made)
    assert formatter.format(made) == "WARNING tests.logs hello world"
