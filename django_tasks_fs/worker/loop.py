"""The ``run_tasks`` loop: poll Firestore, hand executions to child processes, fire cron.

Shutdown: the first SIGINT/SIGTERM stops taking work and lets running attempts finish
for ``shutdown_grace_seconds``; what is still running then is SIGTERMed and hands its
execution back as READY (never recorded as a failure). A second signal exits at once;
the leases of whatever was running then expire and other workers reclaim them.

Child processes that cannot start (:mod:`.startup`): after too many failed starts in a
row, the executions handed to them are recorded FAILED with the children's error, and
the worker stops as on a signal, with ``gave_up`` saying why. A start failure is a
broken environment (settings, import path, missing package), which would fail every
other execution the same way: stopping loudly is better than failing the queue.

Firestore unreachable: every store call gives up after the backend's
``firestore_timeout_seconds`` (StoreUnavailable), so the loop logs the outage once
(worker.outage), retries, and still notices a shutdown signal within seconds.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from types import FrameType

from ..backends.base import FirestoreBackend
from ..exceptions import StoreNotConfigured, StoreUnavailable
from ..scheduling.local import LocalCron
from ..store import TaskExecution
from .chunks import Done, Finished, Job, fail_chunk, worker_name
from .job_runner import JobRunner
from .outage import OutageReport
from .startup import StartFailures, settings_module
from .warm_pool import WarmPool

logger = logging.getLogger(__name__)

#: A warm process claims and runs up to this many executions per hand-out (one commit
#: claims them all, results are written in batches).
MAX_CHUNK = 50
#: Expired leases (dead workers) are looked for at most this often, in seconds.
RECLAIM_INTERVAL = 1.0
#: Pause after a failed loop step (e.g. Firestore unreachable), in seconds.
ERROR_BACKOFF = 1.0


@dataclass
class _LoopState:
    next_poll: float = 0.0
    next_reclaim: float = 0.0
    polled_once: bool = False
    more: bool = False  #: the last poll came back full: poll again at once


@dataclass
class WorkerSettings:
    """How one ``run_tasks`` process behaves (from the command line and the backends)."""

    backends: Sequence[FirestoreBackend]
    queues: Sequence[str] | None = None  #: None: every queue of each backend
    max_workers: int = 4
    poll_interval: float = 1.0
    batch_size: int = 4
    once: bool = False  #: one poll, finish what it found, exit
    burst: bool = False  #: run until nothing is running or due within the retry backoff, then exit
    catch_up: bool = False
    shutdown_grace: float = 30.0
    log_level: int = logging.WARNING


@dataclass
class Stats:
    dispatched: int = 0
    finished: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


class Worker:
    """Serves the given backends until stopped (see the module docstring)."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.jobs_backends = {
            b.alias for b in settings.backends if b.config.mode == "cloud_run_jobs"
        }
        warm = any(b.alias not in self.jobs_backends for b in settings.backends)
        settings_module()  # children need one: fail now, not at the first start
        self.pool = WarmPool(size=settings.max_workers if warm else 0, log_level=settings.log_level)
        self.runner = JobRunner(size=settings.max_workers)
        self.backlog: list[tuple[FirestoreBackend, TaskExecution]] = []
        self.in_flight: set[str] = set()
        self.stats = Stats()
        self.stopping = False
        self.gave_up: str | None = None  #: why the worker stopped on its own (children)
        self._signals = 0
        self.outage = OutageReport()
        started = settings.backends[0].executions.clock.now() if settings.backends else None
        self.cron = (
            LocalCron(settings.backends, started=started, catch_up=settings.catch_up)
            if started
            else None
        )

    # -- signals -----------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals == 1:
            logger.warning("shutting down: finishing running tasks (signal again to exit now)")
            self.stopping = True
            return
        logger.warning("exiting now; running attempts will be reclaimed when their leases expire")
        self.pool.stop(kill=True)
        self.runner.kill_all()
        os._exit(1)

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    # -- polling -----------------------------------------------------------------------

    def _queues(self, backend: FirestoreBackend) -> list[str] | None:
        if self.settings.queues:
            return sorted(set(self.settings.queues) & backend.queues) or sorted(
                self.settings.queues
            )
        return sorted(backend.queues) if backend.queues else None

    def _poll(self, *, reclaim: bool) -> int:
        """Refill the backlog with due executions (and expired leases), best first.

        Returns how many new executions were found.
        """
        found: list[tuple[FirestoreBackend, TaskExecution]] = []
        limit = self.settings.batch_size
        for backend in self.settings.backends:
            store = backend.executions
            queues = self._queues(backend)
            ready = store.ready(backend=backend.alias, queues=queues, limit=limit)
            found += [(backend, e) for e in ready]
            if reclaim:
                expired = store.expired_leases(backend=backend.alias, limit=limit)
                found += [(backend, e) for e in expired if not queues or e.queue_name in queues]
        if self.settings.backends:
            self.outage.answered(self.settings.backends[0].executions.settings.target())
        found.sort(key=lambda item: (-item[1].priority, item[1].run_after))
        queued = {e.id for _, e in self.backlog}
        new = [(b, e) for b, e in found if e.id not in self.in_flight and e.id not in queued]
        self.backlog += new
        return len(new)

    def _free_slots(self) -> int:
        """Executions this worker could start now (a warm process takes a whole chunk)."""
        return len(self.pool.idle()) * MAX_CHUNK + (self.runner.free() if self.jobs_backends else 0)

    def _dispatch(self) -> int:
        """Hand backlog executions out, best first: chunks to warm processes, one per job."""
        started = 0
        while self.backlog:
            backend, execution = self.backlog[0]
            if execution.id in self.in_flight:
                self.backlog.pop(0)
                continue
            if backend.alias in self.jobs_backends:
                if not self.runner.free():
                    break
                chunk = [self.backlog.pop(0)[1]]
                self.runner.submit(Job(backend=backend.alias, executions=(execution,)))
            else:
                idle = self.pool.idle()
                if not idle:
                    break
                size = max(1, min(MAX_CHUNK, -(-len(self.backlog) // len(idle))))
                chunk = []
                while self.backlog and len(chunk) < size and self.backlog[0][0] is backend:
                    candidate = self.backlog.pop(0)[1]
                    if candidate.id not in self.in_flight:
                        chunk.append(candidate)
                self.pool.submit(idle[0], Job(backend=backend.alias, executions=tuple(chunk)))
            for item in chunk:
                self.in_flight.add(item.id)
                logger.debug("dispatched execution_id=%s task=%s", item.id, item.task_path)
            self.stats.dispatched += len(chunk)
            started += len(chunk)
        return started

    def _collect(self, timeout: float) -> list[Finished]:
        """Wait up to ``timeout`` for finished attempts (of either kind)."""
        deadline = time.monotonic() + timeout
        finished = self.runner.collect()
        while True:
            step = 0.05 if self.runner.running else max(0.0, deadline - time.monotonic())
            finished += self.pool.collect(min(step, max(0.0, deadline - time.monotonic())))
            finished += self.runner.collect()
            finished += self._give_up_on_unstartable()
            if finished or time.monotonic() >= deadline:
                break
            if not self.pool.busy() and not self.runner.running:
                time.sleep(max(0.0, deadline - time.monotonic()))
                break
        self._record(finished)
        return finished

    def _record(self, finished: list[Finished]) -> None:
        for job, results in finished:
            self.in_flight.difference_update(job.ids)
            for done in results:
                self.stats.finished += 1
                self.stats.outcomes[done.outcome] = self.stats.outcomes.get(done.outcome, 0) + 1
                logger.info(
                    "finished execution_id=%s outcome=%s %s",
                    done.execution_id,
                    done.outcome,
                    done.detail,
                )

    def _give_up_on_unstartable(self) -> list[Finished]:
        """Fail the jobs whose processes could not start, then stop (module docstring)."""
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
                self.stopping = True
                logger.error("stopping: %ses could not start", failures.kind)
            if jobs:
                failed = [i for job in jobs for i in job.ids]
                logger.error("failed the executions given to them execution_ids=%s", failed)
        return finished

    def _force_cancels(self) -> None:
        """cloud_run_jobs mode: SIGTERM attempts whose execution was force-cancelled."""
        if not self.runner.running:
            return
        by_backend: dict[str, list[str]] = {}
        for item in self.runner.running:
            by_backend.setdefault(item.job.backend, []).extend(item.job.ids)
        for backend in self.settings.backends:
            ids = by_backend.get(backend.alias)
            if ids:
                for execution in backend.executions.get_many(ids):
                    wanted = execution.force_cancel and execution.cancelled_at is not None
                    if wanted and self.runner.sigterm(execution.id):
                        logger.info("force-cancelled execution_id=%s (SIGTERM)", execution.id)

    def _retries_soon(self) -> bool:
        """Is anything READY but due within the longest local retry backoff? (burst mode)"""
        for backend in self.settings.backends:
            store = backend.executions
            horizon = store.clock.now() + timedelta(
                seconds=backend.config.retry_backoff_max_seconds
            )
            if store.ready(
                backend=backend.alias, queues=self._queues(backend), limit=1, now=horizon
            ):
                return True
        return False

    def _busy(self) -> bool:
        return bool(self.in_flight)

    # -- the loop ------------------------------------------------------------------------

    def run(self) -> Stats:
        """Serve until stopped (or, with once/burst, until the work is done)."""
        self.pool.start()
        try:
            self._loop()
            self._drain()
        finally:
            self.pool.stop()
        return self.stats

    def _loop(self) -> None:
        state = _LoopState()
        while not self.stopping:
            try:
                if self._step(state):
                    return
            except StoreNotConfigured:
                raise  # no credentials, no project: retrying cannot help
            except StoreUnavailable as exc:
                self.outage.failed(exc)
                self._collect(ERROR_BACKOFF)
            except Exception:
                # Firestore unreachable, or any other outage: keep the processes and the
                # results flowing, and try again shortly; never die of it.
                logger.exception("worker step failed; retrying in %.1fs", ERROR_BACKOFF)
                self._collect(ERROR_BACKOFF)

    def _step(self, state: _LoopState) -> bool:
        """One turn of the loop; True when a --once / --burst run is complete."""
        settings = self.settings
        low_water = max(1, settings.batch_size // 2)
        now = time.monotonic()
        if now >= state.next_poll and self.cron is not None:
            self.cron.tick(settings.backends[0].executions.clock.now())
            self._force_cancels()
        # Poll when the backlog runs low, on the poll interval, or at once while the
        # last poll came back full (there is more): the next batch is fetched while
        # the processes work on the current one.
        wanted = len(self.backlog) < low_water and (now >= state.next_poll or state.more)
        if wanted and not (settings.once and state.polled_once):
            reclaim = now >= state.next_reclaim
            found = self._poll(reclaim=reclaim)
            state.more = found >= low_water
            state.polled_once = True
            state.next_poll = now + settings.poll_interval
            if reclaim:
                state.next_reclaim = now + max(settings.poll_interval, RECLAIM_INTERVAL)
        self._dispatch()
        idle = not self.backlog and not self._busy()
        if settings.once and state.polled_once and idle:
            return True
        if settings.burst and state.polled_once and idle and not state.more:
            if self._poll(reclaim=True) == 0 and not self._retries_soon():
                return True
            if not self.backlog:
                time.sleep(settings.poll_interval)
            return False
        if state.more and len(self.backlog) < low_water:
            wait = 0.0
        else:
            wait = max(0.0, state.next_poll - time.monotonic())
        self._collect(wait)
        return False

    def _drain(self) -> None:
        """Let running attempts finish within the grace period, then hand the rest back."""
        self._record(self.pool.close() + self.runner.close())
        if not self._busy():
            return
        deadline = time.monotonic() + self.settings.shutdown_grace
        while self._busy() and time.monotonic() < deadline:
            self._collect(min(0.5, max(0.0, deadline - time.monotonic())))
        if self._busy():
            logger.warning(
                "grace period over: handing back %d running attempt(s)", len(self.in_flight)
            )
            self.runner.terminate_all()
            self.pool.terminate_busy()
            deadline = time.monotonic() + 30
            while self._busy() and time.monotonic() < deadline:
                self._collect(0.5)
