"""The endpoints Cloud Tasks and Cloud Scheduler call (``django_tasks_fs.urls``).

Status codes drive the platform: 2xx means done (success, or a final failure); a 5xx
makes Cloud Tasks deliver again later (a retry is wanted, or another delivery holds a
live lease, Firestore unreachable); 4xx answers hostile or malformed requests, which
change nothing.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from django.http import HttpRequest, JsonResponse
from django.tasks.exceptions import InvalidTask
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .auth import AuthenticationFailed, Expectation, verify
from .backends.google_cloud import GoogleCloudBackend
from .dispatching import sweep
from .exceptions import (
    MissingCloudResource,
    ScheduleNotFound,
    StoreUnavailable,
    TaskNotImportable,
)
from .execution.attempt import Attempt
from .execution.outcome import Outcome
from .logging import task_extra
from .policy import schedules_retries
from .registry import firestore_backends
from .scheduling.firing import fire_slot
from .scheduling.slots import is_slot_of, parse_slot
from .store import TaskExecution
from .store.errors import ClaimReason
from .tracing import header_carrier

logger = logging.getLogger(__name__)

#: Ids in bodies: also Firestore document ids, so never reserved ones like ``__x__``.
_ID = re.compile(r"[A-Za-z0-9_-]{1,500}")
_RESERVED_ID = re.compile(r"__.*__", re.DOTALL)


def _valid_id(value: str) -> bool:
    return _ID.fullmatch(value) is not None and _RESERVED_ID.fullmatch(value) is None


def _json(status: int, **body: Any) -> JsonResponse:
    return JsonResponse(body, status=status)


def _authenticate(request: HttpRequest) -> list[GoogleCloudBackend]:
    """The backends whose service account signed this request (before the body is read)."""
    backends = list(firestore_backends(GoogleCloudBackend).values())
    expectations = {
        b.alias: Expectation(
            b.audience, b.config.oidc_service_account or "", b.config.oidc_certs_url
        )
        for b in backends
    }
    matched = verify(request.headers.get("Authorization"), list(set(expectations.values())))
    return [b for b in backends if expectations[b.alias] in matched]


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        raise ValueError("each field must appear once")
    return data


def _form(request: HttpRequest, limit: int) -> dict[str, str]:
    """The body as a dict of single values (form-encoded or JSON); ValueError if malformed."""
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > limit:
        raise OverflowError
    raw = request.read(limit + 1)
    if len(raw) > limit:
        raise OverflowError
    if request.content_type == "application/json":
        try:
            data = json.loads(raw, object_pairs_hook=_unique_keys)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise ValueError("a JSON object of strings is expected")
        return data
    parsed = parse_qs(raw.decode("utf-8"), strict_parsing=bool(raw), max_num_fields=10)
    if any(len(v) != 1 for v in parsed.values()):
        raise ValueError("each field must appear once")
    return {k: v[0] for k, v in parsed.items()}


def _endpoint(handler: Callable[[HttpRequest, list[GoogleCloudBackend]], JsonResponse]) -> Any:
    """Authenticate first; then the handler reads the body."""

    @csrf_exempt
    @require_POST
    def view(request: HttpRequest) -> JsonResponse:
        try:
            backends = _authenticate(request)
        except AuthenticationFailed as exc:
            return _json(exc.status, error=str(exc))
        try:
            return handler(request, backends)
        except StoreUnavailable as exc:
            # Bounded by firestore_timeout_seconds; the platform delivers again later.
            logger.warning("endpoint %s: %s", handler.__name__, exc, extra=task_extra())
            response = _json(503, error=str(exc))
            response["Retry-After"] = "10"
            return response

    view.__name__ = handler.__name__
    return view


def _body(
    request: HttpRequest, backends: list[GoogleCloudBackend], *fields: str
) -> tuple[GoogleCloudBackend, dict[str, str]] | JsonResponse:
    limit = min(b.config.max_request_bytes for b in backends)
    try:
        data = _form(request, limit)
    except OverflowError:
        return _json(413, error=f"Body larger than {limit} bytes.")
    except (ValueError, UnicodeDecodeError) as exc:
        return _json(400, error=f"Malformed body: {exc}")
    missing = [f for f in (*fields, "backend") if not _valid_id(data.get(f, ""))]
    if missing:
        return _json(400, error=f"Missing or invalid fields: {', '.join(missing)}.")
    by_alias = {b.alias: b for b in backends}
    backend = by_alias.get(data["backend"])
    if backend is None:
        # Either not one of ours, or not the backend this caller's token is for.
        return _json(403, error=f"Backend {data['backend']!r} does not accept this caller.")
    return backend, data


def _execute(request: HttpRequest, backends: list[GoogleCloudBackend]) -> JsonResponse:
    parsed = _body(request, backends, "execution_id")
    if isinstance(parsed, JsonResponse):
        return parsed
    backend, data = parsed
    raw_name = request.headers.get("X-CloudTasks-TaskName", "")[:1000]
    task_name = re.sub(r"[^A-Za-z0-9_-]", "", raw_name)[:100]
    worker = f"cloud-tasks:{task_name or 'unknown'}"
    carrier = header_carrier(request.headers)
    # One read and one write claim it; the claim also records the dispatch (the task's
    # name from its headers): enqueue() wrote nothing after the send.
    attempt = Attempt(
        backend,
        data["execution_id"],
        worker_id=worker,
        trace_carrier=carrier,
        platform_names=backend.delivery_names(request.headers),
    )
    result = attempt.run()
    logger.info(
        "executed execution_id=%s outcome=%s",
        attempt.execution_id,
        result.outcome,
        extra=attempt.log_attributes(result),
    )
    body = {"outcome": str(result.outcome), "reason": str(result.reason or "")}
    if result.outcome == Outcome.REFUSED and result.reason == ClaimReason.NOT_FOUND:
        return _json(404, error="Unknown execution.", **body)
    if result.outcome == Outcome.RETRY:
        if result.execution is not None and _rescheduled(backend, result.execution):
            return _json(200, rescheduled=True, **body)  # a new Cloud Task runs the next attempt
        return _json(500, **body)  # a retryable failure: Cloud Tasks delivers again
    if result.wants_retry:
        response = _json(503, **body)  # a live lease elsewhere, not due, handed back
        response["Retry-After"] = "10"
        return response
    return _json(200, **body)


def _rescheduled(backend: GoogleCloudBackend, execution: TaskExecution) -> bool:
    """Send the next attempt at the policy's ``run_after`` (see docs/explanation/retries.md).

    Only when the wait is the policy's, not the queue's. If the send fails, the delivery
    is answered 500 instead: the queue delivers it again, and the claim refuses it
    (NOT_DUE, answered 503) until ``run_after``, so the next attempt still comes.
    """
    if not schedules_retries(execution.retry_policy):
        return False
    try:
        return backend.reschedule(execution)
    except Exception:
        logger.warning(
            "could not reschedule; the queue retries execution_id=%s", execution.id, exc_info=True
        )
        return False


def _schedule(request: HttpRequest, backends: list[GoogleCloudBackend]) -> JsonResponse:
    if not request.headers.get("X-CloudScheduler-JobName"):
        return _json(400, error="Missing X-CloudScheduler-JobName header.")
    try:
        slot = parse_slot(request.headers.get("X-CloudScheduler-ScheduleTime", ""))
    except ValueError:
        return _json(400, error="Missing or invalid X-CloudScheduler-ScheduleTime header.")
    parsed = _body(request, backends, "task_id")
    if isinstance(parsed, JsonResponse):
        return parsed
    backend, data = parsed
    try:
        schedule = backend.schedules.get(data["task_id"])
    except (ScheduleNotFound, ValueError):
        return _json(404, error="Unknown scheduled task.")
    if schedule.backend != backend.alias:
        return _json(404, error="Unknown scheduled task.")
    if not schedule.enabled:
        return _json(200, outcome="disabled")
    if not is_slot_of(schedule, slot, now=backend.executions.clock.now()):
        return _json(400, error="The schedule time is not a slot of this schedule.")
    extra = task_extra(
        backend=backend.alias, task_path=schedule.task_path, queue=schedule.queue_name
    )
    try:
        result = fire_slot(backend, schedule, slot)
    except TaskNotImportable:
        logger.exception(
            "scheduled task cannot be imported schedule=%s", schedule.name, extra=extra
        )
        return _json(200, outcome="task not importable")
    except InvalidTask as exc:
        # The backend no longer accepts the task (e.g. its queue): fix the schedule.
        logger.error("scheduled task refused schedule=%s: %s", schedule.name, exc, extra=extra)
        return _json(200, outcome="invalid task", error=str(exc))
    except MissingCloudResource as exc:
        # Found before the write (nothing written: Cloud Scheduler's retries fire the
        # slot once the queue or job exists), or at the send (recorded FAILED).
        logger.error("schedule=%s not enqueued: %s", schedule.name, exc, extra=extra)
        return _json(503, error=str(exc))
    if result is None:
        return _json(200, outcome="duplicate")  # this slot already enqueued its execution
    return _json(200, outcome="enqueued", execution_id=result.id)


def _sweep(request: HttpRequest, backends: list[GoogleCloudBackend]) -> JsonResponse:
    reports = {b.alias: sweep(b) for b in backends}
    return _json(
        200,
        dispatched={alias: r.dispatched for alias, r in reports.items()},
        redispatched={alias: r.redispatched for alias, r in reports.items()},
        groups_completed={alias: r.groups_completed for alias, r in reports.items()},
    )


execute = _endpoint(_execute)
schedule = _endpoint(_schedule)
sweep_pending = _endpoint(_sweep)
