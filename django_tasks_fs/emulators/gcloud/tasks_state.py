"""Cloud Tasks state: queues, tasks, recently used task names, and when each task is due.

Everything is guarded by one condition variable, which the dispatcher also waits on.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from google.cloud import tasks_v2

from .http_delivery import Delivery
from .retry import backoff
from .rpc import clone

#: Google's defaults for a queue's unset retry and rate limit fields.
DEFAULT_MAX_ATTEMPTS = 100
DEFAULT_MIN_BACKOFF = timedelta(seconds=0.1)
DEFAULT_MAX_BACKOFF = timedelta(seconds=3600)
DEFAULT_MAX_DOUBLINGS = 16
DEFAULT_MAX_DISPATCHES_PER_SECOND = 500.0
DEFAULT_MAX_BURST_SIZE = 100
DEFAULT_MAX_CONCURRENT_DISPATCHES = 1000
#: A paused or saturated queue's tasks are looked at again this often.
HOLD_INTERVAL = 0.1


def fill_queue_defaults(queue: Any) -> None:
    """Give unset retry and rate limit fields Google's defaults, in place."""
    retry = queue.retry_config
    if retry.max_attempts == 0:
        retry.max_attempts = DEFAULT_MAX_ATTEMPTS
    if "min_backoff" not in retry:
        retry.min_backoff = DEFAULT_MIN_BACKOFF
    if "max_backoff" not in retry:
        retry.max_backoff = DEFAULT_MAX_BACKOFF
    if retry.max_doublings == 0:
        retry.max_doublings = DEFAULT_MAX_DOUBLINGS
    limits = queue.rate_limits
    if limits.max_dispatches_per_second == 0:
        limits.max_dispatches_per_second = DEFAULT_MAX_DISPATCHES_PER_SECOND
    limits.max_burst_size = DEFAULT_MAX_BURST_SIZE
    if limits.max_concurrent_dispatches == 0:
        limits.max_concurrent_dispatches = DEFAULT_MAX_CONCURRENT_DISPATCHES
    if not queue.state:
        queue.state = tasks_v2.Queue.State.RUNNING


@dataclass(slots=True)
class TaskEntry:
    """A stored task and its dispatch bookkeeping."""

    task: Any  #: tasks_v2.Task, as GetTask returns it with the FULL view
    queue: str  #: the queue's resource name
    generation: int = 0  #: bumped on every reschedule; older heap entries are stale
    running: bool = False
    previous_response: int | None = None  #: HTTP status of the last attempt


@dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    """One claimed dispatch, handed to a delivery thread."""

    name: str
    queue: str
    generation: int
    task: Any  #: a copy of the task, counts as before this attempt
    previous_response: int | None


class TaskBook:
    """Queues and tasks, with a heap of due times for the dispatcher."""

    def __init__(self, *, dedup_window: float) -> None:
        self.cond = threading.Condition()
        self.queues: dict[str, Any] = {}  #: name -> tasks_v2.Queue
        self.entries: dict[str, TaskEntry] = {}
        self._dedup_window = dedup_window
        self._tombstones: dict[str, float] = {}  #: task name -> monotonic expiry
        self._heap: list[tuple[float, int, str, int]] = []  #: (due, seq, name, generation)
        self._seq = itertools.count()
        self._running: Counter[str] = Counter()  #: queue name -> attempts in flight
        self.closed = False

    # Names -------------------------------------------------------------------

    def name_taken(self, name: str) -> bool:
        """True while a task by that name exists or recently existed."""
        if name in self.entries:
            return True
        expiry = self._tombstones.get(name)
        if expiry is None:
            return False
        if expiry <= time.monotonic():
            del self._tombstones[name]
            return False
        return True

    def remove_task(self, name: str) -> None:
        """Forget a task, keeping its name reserved for the de-duplication window."""
        self.entries.pop(name, None)
        self._tombstones[name] = time.monotonic() + self._dedup_window

    def remove_queue_tasks(self, queue: str) -> None:
        for name in [n for n, e in self.entries.items() if e.queue == queue]:
            self.remove_task(name)

    # Scheduling --------------------------------------------------------------

    def schedule(self, entry: TaskEntry) -> None:
        """Queue ``entry`` for dispatch at its schedule_time; call with ``cond`` held."""
        due = entry.task.schedule_time.timestamp()
        heapq.heappush(self._heap, (due, next(self._seq), entry.task.name, entry.generation))
        self.cond.notify_all()

    def claim_due(self) -> tuple[list[Attempt], float | None]:
        """Claim due tasks of running queues; also return seconds until the next one."""
        now = time.time()
        claimed: list[Attempt] = []
        held: list[tuple[float, int, str, int]] = []
        while self._heap and self._heap[0][0] <= now:
            item = heapq.heappop(self._heap)
            entry = self.entries.get(item[2])
            if entry is None or entry.generation != item[3] or entry.running:
                continue
            queue = self.queues.get(entry.queue)
            if queue is None:
                self.entries.pop(item[2], None)
                continue
            limit = queue.rate_limits.max_concurrent_dispatches
            if queue.state != tasks_v2.Queue.State.RUNNING or self._running[entry.queue] >= limit:
                held.append((now + HOLD_INTERVAL, item[1], item[2], item[3]))
                continue
            claimed.append(
                Attempt(
                    name=item[2],
                    queue=entry.queue,
                    generation=entry.generation,
                    task=clone(entry.task),
                    previous_response=entry.previous_response,
                )
            )
            entry.running = True
            self._running[entry.queue] += 1
            entry.task.dispatch_count += 1
            dispatched = datetime.now(UTC)
            if "first_attempt" not in entry.task:
                entry.task.first_attempt = tasks_v2.Attempt(dispatch_time=dispatched)
            entry.task.last_attempt = tasks_v2.Attempt(
                schedule_time=entry.task.schedule_time, dispatch_time=dispatched
            )
        for item in held:
            heapq.heappush(self._heap, item)
        wait = self._heap[0][0] - now if self._heap else None
        return claimed, wait

    def record(self, attempt: Attempt, delivery: Delivery) -> None:
        """Apply an attempt's outcome: delete on 2xx, else retry or drop per retry_config."""
        with self.cond:
            self._running[attempt.queue] -= 1
            self.cond.notify_all()
            entry = self.entries.get(attempt.name)
            if entry is None or entry.generation != attempt.generation:
                return  # deleted (or purged) while in flight
            entry.running = False
            task = entry.task
            task.last_attempt.response_time = datetime.now(UTC)
            if delivery.status is not None:
                task.response_count += 1
                task.last_attempt.response_status = {
                    "code": _grpc_code(delivery.status),
                    "message": f"HTTP status {delivery.status}",
                }
            else:
                task.last_attempt.response_status = {
                    "code": 4 if delivery.timed_out else 14,
                    "message": delivery.error,
                }
            entry.previous_response = delivery.status
            queue = self.queues.get(entry.queue)
            if delivery.ok or queue is None or _exhausted(queue.retry_config, task):
                self.remove_task(attempt.name)
                return
            retry = queue.retry_config
            delay = backoff(
                retry=task.dispatch_count,
                min_backoff=retry.min_backoff.total_seconds(),
                max_backoff=retry.max_backoff.total_seconds(),
                max_doublings=retry.max_doublings,
            )
            task.schedule_time = datetime.now(UTC) + timedelta(seconds=delay)
            entry.generation += 1
            self.schedule(entry)


def _exhausted(retry: Any, task: Any) -> bool:
    # Both limits must be reached when both are set (Cloud Tasks' documented rule).
    if retry.max_attempts < 0 or task.dispatch_count < retry.max_attempts:
        return False
    if "max_retry_duration" not in retry or not retry.max_retry_duration:
        return True
    first = task.first_attempt.dispatch_time
    return bool(datetime.now(UTC) - first >= retry.max_retry_duration)


def _grpc_code(http_status: int) -> int:
    """The google.rpc.Code Cloud Tasks reports for an HTTP status."""
    if 200 <= http_status < 300:
        return 0
    return {
        400: 3,
        401: 16,
        403: 7,
        404: 5,
        409: 10,
        429: 8,
        499: 1,
        501: 12,
        503: 14,
        504: 4,
    }.get(http_status, 13 if http_status >= 500 else 9)
