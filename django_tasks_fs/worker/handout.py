"""Which child process runs which execution: the backlog, the children, their reports.

The loop (loop.py) decides *when* to poll, fire cron and stop; this module decides
*who* runs what. Due executions wait in a backlog, best first: what the ready
listeners show (``offer()``, :mod:`.feeds`) and what polls and lease checks found
(``poll()``, ``reclaim()``), minus what is already handed out; ``assign()`` gives them
to the warm processes in chunks (``cloud_tasks`` mode, :mod:`.warm_pool`) or one per
``execute_task`` process (``cloud_run_jobs`` mode, :mod:`.job_runner`), and
``collect()`` gathers what the children report back.

Children that cannot start (:mod:`.startup`): after too many failed starts in a row,
the executions given to them are recorded FAILED with the children's error, and
``gave_up`` says why; the loop then stops.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import wait

from ..backends.base import FirestoreBackend
from ..execution.outcome import Outcome
from ..logging import task_extra
from ..store import TaskExecution
from .chunks import Done, Finished, Job, fail_chunk, worker_name
from .feeds import Wakeup
from .job_runner import JobRunner
from .metrics import Metrics
from .startup import StartFailures
from .warm_pool import WarmPool

logger = logging.getLogger(__name__)

_NEVER = object()
#: Outcomes of an attempt that won its claim: the execution changed since it was handed
#: out, so a window still showing that version is stale. (Refused, not started, an
#: error: it may be unchanged, and may be handed out again.)
_CLAIMED = frozenset(str(o) for o in Outcome if o is not Outcome.REFUSED)

#: A warm process claims and runs up to this many executions per hand-out (one commit
#: claims them all, results are written in batches).
MAX_CHUNK = 50
#: Seconds between looks at the children (started? exited?) while waiting for a wake-up.
CHILDREN_CHECK = 1.0
#: How many finished executions ``took()`` and the stale check remember.
RECENT = 4096


@dataclass
class Stats:
    assigned: int = 0  #: executions given to a child
    finished: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    processes_started: int = 0  #: warm worker processes started (none without work)


class HandOut:
    """The backlog of due executions and the children that run them."""

    def __init__(
        self,
        backends: Sequence[FirestoreBackend],
        *,
        queues: Sequence[str] | None,
        max_workers: int,
        log_level: int,
    ) -> None:
        self.backends = backends
        self.queues = queues  #: None: every queue of each backend
        self.jobs_backends = {b.alias for b in backends if b.config.mode == "cloud_run_jobs"}
        warm = any(b.alias not in self.jobs_backends for b in backends)
        self.pool = WarmPool(size=max_workers if warm else 0, log_level=log_level)
        self.runner = JobRunner(size=max_workers)
        self.backlog: list[tuple[FirestoreBackend, TaskExecution]] = []
        #: Found by polls and lease checks, until handed out (the listeners' are not kept).
        self.found: dict[str, tuple[FirestoreBackend, TaskExecution]] = {}
        self.in_flight: set[str] = set()
        #: Update time of each execution as handed out, until RECENT after it finished:
        #: a window still showing that version is stale (the claim is on its way).
        self._handed: dict[str, datetime | None] = {}
        #: The last poll's ready query came back full on some backend (there may be more).
        self.last_poll_full = False
        self.stats = Stats()
        self.metrics = Metrics()  #: the attempts the children reported (/metrics)
        self.gave_up: str | None = None  #: why the children are given up on

    def queues_of(self, backend: FirestoreBackend) -> list[str] | None:
        """The queues to poll on ``backend`` (None: all of them)."""
        if self.queues:
            return sorted(set(self.queues) & backend.queues) or sorted(self.queues)
        return sorted(backend.queues) if backend.queues else None

    def busy(self) -> bool:
        return bool(self.in_flight)

    def _stale(self, execution: TaskExecution) -> bool:
        """Is ``execution`` the version this worker handed out (it ran or runs already)?"""
        handed = self._handed.get(execution.id, _NEVER)
        return handed is not _NEVER and handed == execution.update_time

    def unclaimed(self) -> bool:
        """Is a chunk handed to a warm process not claimed yet? (``execute_task``
        processes say nothing of their claim: not counted.)"""
        return self.pool.unclaimed()

    def room(self) -> bool:
        """Could an execution start now (a warm process free or yet to start, a job slot)?"""
        warm = len(self.jobs_backends) < len(self.backends)
        if warm and (self.pool.idle() or len(self.pool.children) < self.pool.size):
            return True
        return bool(self.jobs_backends) and self.runner.free() > 0

    def took(self, execution_id: str) -> bool:
        """Was ``execution_id`` handed out by this worker (running, or finished lately)?"""
        return execution_id in self.in_flight or execution_id in self._handed

    # -- the backlog -------------------------------------------------------------------

    def poll(self, *, limit: int, reclaim: bool) -> int:
        """Add due executions (and expired leases) to the backlog, best first.

        Returns how many new executions were found.
        """
        found: list[tuple[FirestoreBackend, TaskExecution]] = []
        full = False
        for backend in self.backends:
            store = backend.executions
            queues = self.queues_of(backend)
            ready = store.ready(backend=backend.alias, queues=queues, limit=limit)
            full = full or len(ready) >= limit
            found += [(backend, e) for e in ready]
            if reclaim:
                expired = store.expired_leases(backend=backend.alias, limit=limit)
                found += [(backend, e) for e in expired if not queues or e.queue_name in queues]
        self.last_poll_full = full
        return self._found(found)

    def _found(self, found: list[tuple[FirestoreBackend, TaskExecution]]) -> int:
        queued = {e.id for _, e in self.backlog} | self.found.keys()
        new = 0
        for backend, execution in found:
            if execution.id in self.in_flight or self._stale(execution):
                continue
            new += execution.id not in queued
            self.found[execution.id] = (backend, execution)  # the newest version read
        self.offer(None)
        return new

    def reclaim(self, *, limit: int) -> float | None:
        """Add executions whose lease expired (their worker died) to the backlog.

        Returns the seconds until the next lease of a RUNNING execution expires (0: more
        expired ones than ``limit``), None when nothing runs. No lease can expire before
        then, and one taken later expires a lease length after that at the earliest: the
        next check is due then (see loop.py).
        """
        expired: list[tuple[FirestoreBackend, TaskExecution]] = []
        soonest: float | None = None
        for backend in self.backends:
            store = backend.executions
            queues = self.queues_of(backend)
            leases = store.leases(backend=backend.alias, limit=limit)
            now = store.clock.now()
            for execution in leases:
                expires = execution.lease_expires_at
                if expires is not None and expires > now:
                    wait_for = (expires - now).total_seconds()
                    soonest = wait_for if soonest is None else min(soonest, wait_for)
                    break
                if not queues or execution.queue_name in queues:
                    expired.append((backend, execution))
            else:
                if len(leases) >= limit:
                    soonest = 0.0
        self._found(expired)
        return soonest

    def offer(self, ready: list[tuple[FirestoreBackend, TaskExecution]] | None) -> float | None:
        """Rebuild the backlog: the due ones of ``ready`` (what the listeners show; None:
        keep the backlog's) and what polls found, not handed out yet, best first.

        Returns the seconds until the first execution of ``ready`` that is not due yet
        falls due (None: none).
        """
        self.found = {i: f for i, f in self.found.items() if not self._stale(f[1])}
        items = list(self.found.values())
        not_due: float | None = None
        if ready is None:
            items += [(b, e) for b, e in self.backlog if e.id not in self.found]
        else:
            for backend, execution in ready:
                wait_for = _seconds_until(execution.run_after, backend)
                if wait_for > 0:
                    not_due = wait_for if not_due is None else min(not_due, wait_for)
                elif execution.id not in self.found:
                    items.append((backend, execution))
        items = [(b, e) for b, e in items if e.id not in self.in_flight and not self._stale(e)]
        items.sort(key=lambda item: (-item[1].priority, item[1].run_after))
        self.backlog = items
        return not_due

    def assign(self) -> int:
        """Give backlog executions out, best first: chunks to warm processes, one per job."""
        started = 0
        warm = sum(1 for backend, _ in self.backlog if backend.alias not in self.jobs_backends)
        if warm:  # processes start when there is work for them (warm_pool)
            self.pool.want(warm)
            self.stats.processes_started = self.pool.launched
        while self.backlog:
            backend, execution = self.backlog[0]
            if execution.id in self.in_flight:
                self.backlog.pop(0)
                continue
            if backend.alias in self.jobs_backends:
                # What can start now, as one fan-out (one process each, job_runner.py).
                size = min(self.runner.free(), backend.config.fan_out_max_tasks)
                if not size:
                    break
                chunk = self._take(backend, size)
                self.runner.submit(Job(backend=backend.alias, executions=tuple(chunk)))
            else:
                idle = self.pool.idle()
                if not idle:
                    break
                size = max(1, min(MAX_CHUNK, -(-len(self.backlog) // len(idle))))
                chunk = self._take(backend, size)
                self.pool.submit(idle[0], Job(backend=backend.alias, executions=tuple(chunk)))
            for item in chunk:
                self.in_flight.add(item.id)
                self._handed.pop(item.id, None)
                self._handed[item.id] = item.update_time
                self.found.pop(item.id, None)
                logger.debug("assigned execution_id=%s task=%s", item.id, item.task_path)
            self.stats.assigned += len(chunk)
            started += len(chunk)
        return started

    def _take(self, backend: FirestoreBackend, size: int) -> list[TaskExecution]:
        """Up to ``size`` executions of ``backend`` from the head of the backlog."""
        chunk: list[TaskExecution] = []
        while self.backlog and len(chunk) < size and self.backlog[0][0] is backend:
            candidate = self.backlog.pop(0)[1]
            if candidate.id not in self.in_flight:
                chunk.append(candidate)
        return chunk

    # -- what the children report ------------------------------------------------------

    def collect(self, timeout: float, wakeup: Wakeup | None = None) -> list[Finished]:
        """Wait up to ``timeout`` for finished attempts (of either kind), or until
        ``wakeup`` is set (a listener delivered)."""
        deadline = time.monotonic() + timeout
        claims = self.pool.claims
        finished = self.runner.collect()
        while True:
            left = max(0.0, deadline - time.monotonic())
            step = min(0.05, left) if self.runner.running else left
            if wakeup is not None:
                step = min(step, CHILDREN_CHECK)
            woken = False
            if wakeup is not None:
                woken = wakeup.is_set()
                if not woken and step > 0:
                    fd = wakeup.fileno()
                    woken = fd in wait([*(c.conn for c in self.pool.busy()), fd], step)
                finished += self.pool.collect(0)
            else:
                finished += self.pool.collect(step)
            finished += self.runner.collect()
            finished += self._give_up_on_unstartable()
            claimed = self.pool.claims != claims  # the loop may poll again (loop.py)
            if finished or woken or claimed or self.gave_up or time.monotonic() >= deadline:
                break
            if wakeup is None and not self.pool.busy() and not self.runner.running:
                time.sleep(max(0.0, deadline - time.monotonic()))
                break
        self.record(finished)
        return finished

    def record(self, finished: list[Finished]) -> None:
        for job, results in finished:
            self.in_flight.difference_update(job.ids)
            for done in results:
                if done.outcome not in _CLAIMED:
                    self._handed.pop(done.execution_id, None)
            while len(self._handed) > RECENT + len(self.in_flight):
                oldest = next(iter(self._handed))
                if oldest in self.in_flight:
                    break
                del self._handed[oldest]
            self.metrics.observe(job, results)
            by_id = {e.id: e for e in job.executions}
            for done in results:
                self.stats.finished += 1
                self.stats.outcomes[done.outcome] = self.stats.outcomes.get(done.outcome, 0) + 1
                logger.info(
                    "finished execution_id=%s outcome=%s %s",
                    done.execution_id,
                    done.outcome,
                    done.detail,
                    extra=_extra(job, done, by_id),
                )

    def _give_up_on_unstartable(self) -> list[Finished]:
        """Fail the jobs whose processes could not start; set ``gave_up`` (module docstring)."""
        finished: list[Finished] = []
        sources: list[tuple[StartFailures, list[Job]]] = [
            (self.pool.failures, self.pool.take_unstartable()),
            (self.runner.failures, self.runner.take_unstartable()),
        ]
        for failures, jobs in sources:
            if not failures.exhausted:
                continue
            message = failures.give_up_message()
            name = worker_name()
            for job in jobs:
                try:
                    finished.append((job, fail_chunk(job, name, message)))
                except Exception:  # Firestore unreachable: the executions stay READY
                    logger.exception("could not fail execution_ids=%s", job.ids)
                    finished.append((job, [Done(execution_id=i, outcome="error") for i in job.ids]))
            if self.gave_up is None:
                self.gave_up = f"{failures.kind}es could not start: {message}"
                logger.error("stopping: %ses could not start", failures.kind)
            if jobs:
                failed = [i for job in jobs for i in job.ids]
                logger.error("failed the executions given to them execution_ids=%s", failed)
        return finished

    def force_cancels(self) -> None:
        """cloud_run_jobs mode: SIGTERM attempts whose execution was force-cancelled."""
        if not self.runner.running:
            return
        by_backend: dict[str, list[str]] = {}
        for item in self.runner.running:
            by_backend.setdefault(item.job.backend, []).extend(item.job.ids)
        for backend in self.backends:
            ids = by_backend.get(backend.alias)
            if ids:
                for execution in backend.executions.get_many(ids):
                    wanted = execution.force_cancel and execution.cancelled_at is not None
                    if wanted and self.runner.sigterm(execution.id):
                        logger.info("force-cancelled execution_id=%s (SIGTERM)", execution.id)

    # -- the children's lifetime -------------------------------------------------------

    def start(self) -> None:
        """Nothing to start yet: warm processes start once there is work (``assign``)."""

    def stop(self) -> None:
        self.pool.stop()
        self.stats.processes_started = self.pool.launched

    def kill(self) -> None:
        """Kill every child at once (a second shutdown signal)."""
        self.pool.stop(kill=True)
        self.runner.kill_all()

    def drain(self, grace: float) -> None:
        """Let running attempts finish within ``grace`` seconds, then hand the rest back."""
        self.record(self.pool.close() + self.runner.close())
        if not self.busy():
            return
        deadline = time.monotonic() + grace
        while self.busy() and time.monotonic() < deadline:
            self.collect(min(0.5, max(0.0, deadline - time.monotonic())))
        if self.busy():
            logger.warning(
                "grace period over: handing back %d running attempt(s)", len(self.in_flight)
            )
            self.runner.terminate_all()
            self.pool.terminate_busy()
            deadline = time.monotonic() + 30
            while self.busy() and time.monotonic() < deadline:
                self.collect(0.5)


def _extra(job: Job, done: Done, by_id: dict[str, TaskExecution]) -> dict[str, object]:
    """The log attributes of what a child reported (the execution as handed out, then
    the attempt's own number, process, duration and error)."""
    return task_extra(
        by_id.get(done.execution_id),
        execution_id=done.execution_id,
        backend=job.backend,
        attempt=done.attempt,
        worker_id=done.worker_id or None,
        outcome=done.outcome,
        duration=done.duration,
        error_class=done.error_class,
    )


def _seconds_until(when: datetime, backend: FirestoreBackend) -> float:
    """Seconds from now until the server time ``when`` (by ``backend``'s clock)."""
    return (when - backend.executions.clock.now()).total_seconds()
