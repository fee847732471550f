"""Structured log records: the attributes every record about an execution carries, and a
JSON formatter that Google Cloud Logging understands.

Records of the worker, its processes, the ``execute/`` and ``schedule/`` endpoints,
``execute_task`` and the sweeper carry ``FIELDS`` as record attributes (``extra=``),
built by :func:`task_extra` (the one place that names them). While an attempt runs, its
attributes are also the *log context* (:func:`log_context`): every record emitted then,
the task's own included, gets them from :class:`TaskAttributes` or the formatter. A
text handler prints the message as before; :class:`CloudLoggingFormatter` prints one
JSON object per record, which Cloud Run and GKE turn into a structured ``jsonPayload``::

    LOGGING = {
        "version": 1,
        "formatters": {"json": {"()": "django_tasks_fs.logging.CloudLoggingFormatter"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
        "root": {"handlers": ["console"], "level": "INFO"},
    }
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .tracing import current_span_ids

if TYPE_CHECKING:
    from .store import TaskExecution

#: The attributes of a record about an execution (None when not known).
FIELDS = (
    "execution_id",
    "task_path",
    "backend",
    "queue",
    "attempt",
    "worker_id",
    "outcome",
    "duration",
    "error_class",
)
#: The record attribute holding the W3C ``traceparent`` of the attempt (for the trace id).
TRACEPARENT = "traceparent"
#: ``DJANGO_TASKS_FS_LOG_FORMAT=json``: the commands' console handler prints JSON.
FORMAT_ENV = "DJANGO_TASKS_FS_LOG_FORMAT"

_context: ContextVar[Mapping[str, Any]] = ContextVar(
    "django_tasks_fs_log_context", default=MappingProxyType({})
)
#: What every record of this process carries when neither it nor its context says
#: otherwise (process_attributes): a worker process's id, for the records of threads
#: that no context reaches (the Google clients' own threads).
_process: dict[str, Any] = {}

#: Python levels as Cloud Logging severities.
_SEVERITIES = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}
_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}


def task_extra(
    execution: TaskExecution | None = None,
    *,
    backend: str | None = None,
    worker_id: str | None = None,
    outcome: str | None = None,
    duration: float | None = None,
    error_class: str | None = None,
    **known: Any,
) -> dict[str, Any]:
    """The ``extra=`` of a record about ``execution``: the log context, then what
    ``execution`` says, then the arguments (only those given; ``known`` takes FIELDS)."""
    unknown = set(known) - set(FIELDS)
    if unknown:
        raise TypeError(f"Not log attributes: {', '.join(sorted(unknown))}.")
    extra: dict[str, Any] = dict(_context.get())
    if execution is not None:
        extra.update(
            execution_id=execution.id,
            task_path=execution.task_path,
            queue=execution.queue_name,
            attempt=execution.attempts,
        )
        if execution.backend:
            extra["backend"] = execution.backend
    given = {
        "backend": backend,
        "worker_id": worker_id,
        "outcome": outcome,
        "duration": None if duration is None else round(duration, 6),
        "error_class": error_class or None,
        **known,
    }
    extra.update({k: v for k, v in given.items() if v is not None})
    return extra


@contextmanager
def log_context(
    execution: TaskExecution | None = None, *, traceparent: str | None = None, **attributes: Any
) -> Iterator[None]:
    """Give every record emitted inside the block (in this thread or task) these attributes."""
    values = task_extra(execution, **attributes)
    if traceparent:
        values[TRACEPARENT] = traceparent
    token = _context.set(values)
    try:
        yield
    finally:
        _context.reset(token)


@contextmanager
def process_attributes(**attributes: Any) -> Iterator[None]:
    """Give every record emitted while the block runs, in any thread of this process,
    these attributes, under the record's own and its log context's."""
    saved = dict(_process)
    _process.update(attributes)
    try:
        yield
    finally:
        _process.clear()
        _process.update(saved)


def add_attributes(record: logging.LogRecord) -> logging.LogRecord:
    """Set every FIELDS attribute on ``record``: its own, else the log context's, else
    the process's, else None."""
    context = _context.get()
    for name in (*FIELDS, TRACEPARENT):
        if getattr(record, name, None) is None:
            value = context.get(name)
            setattr(record, name, _process.get(name) if value is None else value)
    return record


class TaskAttributes(logging.Filter):
    """A handler filter that gives every record the FIELDS attributes (see add_attributes)."""

    def filter(self, record: logging.LogRecord) -> bool:
        add_attributes(record)
        return True


def _trace_ids(record: logging.LogRecord) -> tuple[str, str, bool] | None:
    """(trace id, span id, sampled): the current OpenTelemetry span's, else the record's
    W3C ``traceparent`` (``00-<trace>-<span>-<flags>``)."""
    ids = current_span_ids()
    if ids is not None:
        return ids
    parts = str(getattr(record, TRACEPARENT, None) or "").split("-")
    if len(parts) == 4 and len(parts[1]) == 32 and len(parts[2]) == 16:
        try:
            sampled = bool(int(parts[3], 16) & 1)
        except ValueError:
            return None
        return parts[1], parts[2], sampled
    return None


class CloudLoggingFormatter(logging.Formatter):
    """One JSON object per record, in Cloud Logging's structured-logging shape.

    ``severity``, ``message`` (with the traceback, which Error Reporting picks up),
    ``time``, ``logger``, ``logging.googleapis.com/sourceLocation``; the trace
    (``logging.googleapis.com/trace``, ``spanId``, ``trace_sampled``) of the current
    OpenTelemetry span or of the attempt's W3C context; and the non-empty FIELDS and
    any other ``extra=`` attributes as ``jsonPayload`` fields. ``project`` (default:
    ``GOOGLE_CLOUD_PROJECT``) makes the trace a full resource name
    (``projects/P/traces/T``), which Cloud Logging links to Cloud Trace.
    """

    def __init__(self, *args: Any, project: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.project = project or os.environ.get("GOOGLE_CLOUD_PROJECT") or ""

    def format(self, record: logging.LogRecord) -> str:
        add_attributes(record)
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        elif record.exc_text:
            message = f"{message}\n{record.exc_text}"
        if record.stack_info:
            message = f"{message}\n{self.formatStack(record.stack_info)}"
        entry: dict[str, Any] = {
            "severity": _SEVERITIES.get(record.levelno, record.levelname),
            "message": message,
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
            "logging.googleapis.com/sourceLocation": {
                "file": record.pathname,
                "line": record.lineno,
                "function": record.funcName,
            },
        }
        ids = _trace_ids(record)
        if ids is not None:
            trace_id, span_id, sampled = ids
            trace = f"projects/{self.project}/traces/{trace_id}" if self.project else trace_id
            entry["logging.googleapis.com/trace"] = trace
            entry["logging.googleapis.com/spanId"] = span_id
            entry["logging.googleapis.com/trace_sampled"] = sampled
        for name, value in record.__dict__.items():
            if name in _RESERVED or name == TRACEPARENT or name.startswith("_") or value is None:
                continue
            entry.setdefault(name, value)
        return json.dumps(entry, default=str)
