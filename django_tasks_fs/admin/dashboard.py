"""The dashboard's figures: per backend and queue, what is waiting, running, finishing, stuck.

Every figure is a capped count or a query with a limit (store/executions/stats.py), so
a view costs the same at 0 and at 50,000 executions: per queue 2 counts (ready,
running), 1 query of 1 document (the oldest due READY), 4 counts (SUCCESSFUL and
FAILED over 1 h and 24 h) and 1 query of the last ``sample`` finished executions (the
durations); per backend 2 counts and 2 queries of at most ``listed`` documents (expired
leases, stale PENDING dispatches). All of them are sent in parallel.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.tasks import TaskResultStatus

from ..backends.base import FirestoreBackend
from ..store import TaskExecution
from ..store.executions import FinishedRun

#: (label, length) of the windows the finished executions are counted over.
WINDOWS = (("1 h", timedelta(hours=1)), ("24 h", timedelta(hours=24)))
#: Concurrent Firestore requests of one dashboard view.
MAX_PARALLEL = 16


@dataclass(frozen=True, slots=True)
class Capped:
    """A count that stopped at ``limit`` (None: exact); shown as '1,000+' when it did."""

    value: int
    limit: int | None

    @property
    def capped(self) -> bool:
        return self.limit is not None and self.value >= self.limit

    def __str__(self) -> str:
        return f"{self.value:,}+" if self.capped else f"{self.value:,}"


@dataclass(frozen=True, slots=True)
class Window:
    """The executions that finished over the last ``label``."""

    label: str
    hours: float
    successful: Capped
    failed: Capped

    @property
    def finished(self) -> str:
        total = self.successful.value + self.failed.value
        capped = self.successful.capped or self.failed.capped
        return f"{total:,}+" if capped else f"{total:,}"

    @property
    def per_hour(self) -> str:
        rate = (self.successful.value + self.failed.value) / self.hours
        capped = self.successful.capped or self.failed.capped
        return f"{'≥ ' if capped else ''}{rate:,.1f}/h"

    @property
    def failure_rate(self) -> str:
        """FAILED / finished; a bound ('≤', '≥') when a count was capped, '?' when both were."""
        ok, failed = self.successful, self.failed
        total = ok.value + failed.value
        if total == 0:
            return "-"
        if ok.capped and failed.capped:
            return "?"
        rate = f"{failed.value / total:.1%}"
        if ok.capped:
            return f"≤ {rate}"  # more successes would only lower it
        if failed.capped:
            return f"≥ {rate}"
        return rate


@dataclass(frozen=True, slots=True)
class Durations:
    """p50 and p95 of one task path's runs in a queue's sample."""

    task_path: str
    queue_name: str
    runs: int
    p50: float
    p95: float
    slowest: float


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueFigures:
    """The figures of one queue (``name`` None: the backend's every queue)."""

    name: str | None
    ready: Capped
    running: Capped
    oldest: TaskExecution | None  #: the READY execution due the longest
    oldest_age: timedelta | None
    windows: list[Window]
    durations: list[Durations]
    sampled: int  #: finished executions in the duration sample


@dataclass(frozen=True, slots=True, kw_only=True)
class BackendFigures:
    """One backend's queues, and its executions that need an operator's eye."""

    alias: str
    now: datetime
    queues: list[QueueFigures]
    stuck: Capped  #: RUNNING with an expired lease
    stuck_items: list[TaskExecution]
    pending: Capped  #: PENDING dispatch for longer than ``grace``
    pending_items: list[TaskExecution]
    grace: timedelta


def percentile(values: Sequence[float], percent: float) -> float:
    """The nearest-rank percentile of ``values`` (not empty)."""
    ordered = sorted(values)
    rank = max(math.ceil(percent / 100 * len(ordered)), 1)
    return ordered[rank - 1]


def durations(queue_name: str, runs: list[FinishedRun]) -> list[Durations]:
    """Per task path, p50 / p95 / slowest of ``runs``, the most run path first."""
    by_path: dict[str, list[float]] = defaultdict(list)
    for run in runs:
        by_path[run.task_path].append(run.seconds)
    found = [
        Durations(
            task_path=path,
            queue_name=queue_name,
            runs=len(seconds),
            p50=percentile(seconds, 50),
            p95=percentile(seconds, 95),
            slowest=max(seconds),
        )
        for path, seconds in by_path.items()
    ]
    return sorted(found, key=lambda d: (-d.runs, d.task_path))


class Dashboard:
    """The figures of ``backends``, read in parallel when built."""

    def __init__(
        self,
        backends: Sequence[FirestoreBackend],
        *,
        count_limit: int | None,
        sample: int,
        listed: int,
        grace: timedelta,
    ) -> None:
        self.count_limit = count_limit
        self.sample = sample  #: finished executions read per queue for the durations
        self.listed = listed  #: stuck / pending executions listed per backend
        self.grace = grace
        workers = max(1, min(MAX_PARALLEL, 12 * len(backends)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            self._pool: ThreadPoolExecutor | None = pool
            pending = [self._backend(b) for b in backends]
            self.backends = [build() for build in pending]
        self._pool = None

    def _submit(self, call: Callable[..., Any], /, **kwargs: Any) -> Future[Any]:
        assert self._pool is not None, "only while the figures are read"
        return self._pool.submit(call, **kwargs)

    def _backend(self, backend: FirestoreBackend) -> Callable[[], BackendFigures]:
        """Send the backend's queries; return what builds its figures from the answers."""
        store, alias, limit = backend.executions, backend.alias, self.count_limit
        now = store.clock.now()
        names: list[str | None] = [*sorted(backend.queues)] or [None]
        queues = [self._queue(backend, name, now) for name in names]
        older_than = now - self.grace
        stuck = self._submit(store.expired_leases_count, backend=alias, now=now, limit=limit)
        stuck_items = self._submit(store.expired_leases, backend=alias, now=now, limit=self.listed)
        pending = self._submit(
            store.stale_pending_count, backend=alias, older_than=older_than, limit=limit
        )
        pending_items = self._submit(
            store.pending_dispatch, backend=alias, older_than=older_than, limit=self.listed
        )

        def build() -> BackendFigures:
            return BackendFigures(
                alias=alias,
                now=now,
                queues=[queue() for queue in queues],
                stuck=Capped(stuck.result(), limit),
                stuck_items=stuck_items.result(),
                pending=Capped(pending.result(), limit),
                pending_items=pending_items.result(),
                grace=self.grace,
            )

        return build

    def _queue(
        self, backend: FirestoreBackend, name: str | None, now: datetime
    ) -> Callable[[], QueueFigures]:
        store, limit = backend.executions, self.count_limit
        scope: dict[str, Any] = {"backend": backend.alias, "queue_name": name}
        ready = self._submit(
            store.status_count, status=TaskResultStatus.READY, **scope, limit=limit
        )
        running = self._submit(
            store.status_count, status=TaskResultStatus.RUNNING, **scope, limit=limit
        )
        oldest = self._submit(store.oldest_ready, **scope, now=now)
        windows: list[tuple[str, timedelta, Future[int], Future[int]]] = [
            (
                label,
                length,
                self._submit(
                    store.finished_since,
                    **scope,
                    status=TaskResultStatus.SUCCESSFUL,
                    since=now - length,
                    limit=limit,
                ),
                self._submit(
                    store.finished_since,
                    **scope,
                    status=TaskResultStatus.FAILED,
                    since=now - length,
                    limit=limit,
                ),
            )
            for label, length in WINDOWS
        ]
        sample = self._submit(store.recent_durations, **scope, limit=self.sample)

        def build() -> QueueFigures:
            first: TaskExecution | None = oldest.result()
            runs: list[FinishedRun] = sample.result()
            return QueueFigures(
                name=name,
                ready=Capped(ready.result(), limit),
                running=Capped(running.result(), limit),
                oldest=first,
                oldest_age=None if first is None else max(now - first.run_after, timedelta(0)),
                windows=[
                    Window(
                        label,
                        length / timedelta(hours=1),
                        Capped(ok.result(), limit),
                        Capped(failed.result(), limit),
                    )
                    for label, length, ok, failed in windows
                ],
                durations=durations(name or "all queues", runs),
                sampled=len(runs),
            )

        return build
