"""The ``run_tasks`` loop: follow Firestore, fire cron, hand executions out, stop.

This module decides *when* (look for work, reclaim expired leases, fire cron, stop);
who runs what is the HandOut's (:mod:`.handout`): the backlog and the child processes.

Listening, not polling: the due executions and the scheduled tasks come from Firestore
listeners (:mod:`.feeds`), which wake the loop when they deliver; between deliveries the
loop sleeps until the next thing it knows is due: an execution's ``run_after``, a cron
slot, a lease check, the listeners' refresh. An idle worker sends no query. A burst
(a ready window full of due executions) pauses the ready listeners and polls for each
next batch instead (``_burst_poll``): a listener is billed twice per task, a poll once.

Expired leases (a worker died): a lease check reads the RUNNING executions by lease
expiry and reclaims the expired ones; the next check is due when the next lease known
expires, or a lease length after an execution left the ready window without this
worker taking it (another worker claimed it), or at the listeners' refresh at the
latest (``feeds.REFRESH``): a lease taken since the last check cannot expire sooner
than a lease length after it. Without listeners (``--once``, a listener broken, a
Firestore that does not answer them) the loop polls every ``poll_interval`` as before,
and listens again once a poll has succeeded.

Shutdown: the first SIGINT/SIGTERM stops taking work and lets running attempts finish
for ``shutdown_grace_seconds``; what is still running then is SIGTERMed and hands its
execution back as READY (never recorded as a failure). A second signal exits at once;
the leases of whatever was running then expire and other workers reclaim them.

Child processes that cannot start: after too many failed starts in a row the HandOut
fails the executions handed to them and gives up; the worker then stops as on a
signal, with ``gave_up`` saying why. A start failure is a broken environment
(settings, import path, missing package), which would fail every other execution the
same way: stopping loudly is better than failing the queue.

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
from typing import TYPE_CHECKING

from ..backends.base import FirestoreBackend
from ..exceptions import StoreNotConfigured, StoreUnavailable
from ..group_completion import sweep_groups
from ..logging import process_attributes
from ..scheduling.local import LocalCron
from .chunks import Finished, worker_name
from .feeds import REFRESH, Feeds, Wakeup
from .handout import HandOut, Stats
from .health import Health
from .outage import OutageReport
from .startup import settings_module

if TYPE_CHECKING:
    from .health_server import HealthServer

logger = logging.getLogger(__name__)

#: Expired leases (dead workers) are looked for at most this often, in seconds.
RECLAIM_INTERVAL = 1.0
#: Pause after a failed loop step (e.g. Firestore unreachable), in seconds.
ERROR_BACKOFF = 1.0
#: Seconds after a listener broke before listening again (once a poll succeeded).
RELISTEN_BACKOFF = 5.0
#: Seconds between two sweeps for task groups whose completion check was lost (one query
#: per backend, one count per OPEN group older than a minute), while this worker runs
#: tasks. The loop wakes at least every REFRESH, so a sweep runs within two of these.
GROUP_SWEEP_INTERVAL = REFRESH
#: While nothing ran here since the last sweep: an idle worker sends one query per
#: backend this often (a group left by another worker's crash is found then).
GROUP_SWEEP_IDLE_INTERVAL = 10 * REFRESH


@dataclass
class _LoopState:
    next_poll: float = 0.0
    next_reclaim: float = 0.0
    polled_once: bool = False
    more: bool = False  #: the last poll came back full: poll again at once
    short: bool = False  #: a burst's poll came back short: listen again (feeds.pause_ready)
    listen_after: float = 0.0  #: time.monotonic() before which not to listen again
    next_cron: float = 0.0
    next_force: float = 0.0
    #: The first group sweep waits: groups left by a crash are found then.
    next_group_sweep: float = field(default_factory=lambda: time.monotonic() + GROUP_SWEEP_INTERVAL)
    #: Attempts finished here at the last group sweep (none since: the idle interval).
    swept_after: int = -1
    last_group_sweep: float = field(default_factory=time.monotonic)


@dataclass
class WorkerSettings:
    """How one ``run_tasks`` process behaves (from the command line and the backends)."""

    backends: Sequence[FirestoreBackend]
    queues: Sequence[str] | None = None  #: None: every queue of each backend
    max_workers: int = 4
    poll_interval: float = 1.0
    batch_size: int = 4
    once: bool = False  #: one poll, finish what it found, exit
    listen: bool = True  #: follow Firestore with listeners (False: poll only)
    burst: bool = False  #: run until nothing is running or due within the retry backoff, then exit
    catch_up: bool = False
    shutdown_grace: float = 30.0
    log_level: int = logging.WARNING
    health_port: int | None = None  #: serve /healthz and /metrics on this port (0: any free)


class Worker:
    """Serves the given backends until stopped (see the module docstring)."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        settings_module()  # children need one: fail now, not at the first start
        self.handout = HandOut(
            settings.backends,
            queues=settings.queues,
            max_workers=settings.max_workers,
            log_level=settings.log_level,
        )
        self._stop_requested = False
        self._signals = 0
        self.outage = OutageReport()
        self.health = Health(self.outage)
        self._server: HealthServer | None = None
        started = settings.backends[0].executions.clock.now() if settings.backends else None
        self.cron = (
            LocalCron(settings.backends, started=started, catch_up=settings.catch_up)
            if started
            else None
        )
        self.wakeup = Wakeup()
        self.feeds = Feeds(
            settings.backends,
            queues_of={b.alias: self.handout.queues_of(b) for b in settings.backends},
            window=settings.batch_size,
            cron_backends=self.cron.backends if self.cron is not None else (),
            wakeup=self.wakeup,
        )
        #: Heartbeat timeout: a lease lasts at least this long after it is taken.
        self._lease_length = min(
            (b.config.heartbeat_timeout_seconds for b in settings.backends), default=30.0
        )

    @property
    def stopping(self) -> bool:
        """A signal asked to stop, or the children could not start."""
        return self._stop_requested or self.gave_up is not None

    @property
    def gave_up(self) -> str | None:
        """Why the worker stopped on its own (children that could not start), if it did."""
        return self.handout.gave_up

    # -- signals -----------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals == 1:
            logger.warning("shutting down: finishing running tasks (signal again to exit now)")
            self._stop_requested = True
            self.wakeup.set()  # out of a long wait for the next delivery
            return
        logger.warning("exiting now; running attempts will be reclaimed when their leases expire")
        self.handout.kill()
        os._exit(1)

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    # -- polling -----------------------------------------------------------------------

    def _poll(self, *, reclaim: bool) -> int:
        """Refill the backlog; return how many new executions were found."""
        found = self.handout.poll(limit=self.settings.batch_size, reclaim=reclaim)
        if self.settings.backends:
            self.outage.answered(self.settings.backends[0].executions.settings.target())
        return found

    def _collect(self, timeout: float) -> list[Finished]:
        self.health.waiting(timeout)
        return self.handout.collect(timeout, self.wakeup)

    def _retries_soon(self) -> bool:
        """Is anything READY but due within the longest local retry backoff? (burst mode)"""
        for backend in self.settings.backends:
            store = backend.executions
            horizon = store.clock.now() + timedelta(
                seconds=backend.config.retry_backoff_max_seconds
            )
            queues = self.handout.queues_of(backend)
            if store.ready(backend=backend.alias, queues=queues, limit=1, now=horizon):
                return True
        return False

    # -- the loop ------------------------------------------------------------------------

    def run(self) -> Stats:
        """Serve until stopped (or, with once/burst, until the work is done)."""
        if self.settings.health_port is not None and self._server is None:
            self.serve_health()
        self.handout.start()
        try:
            with process_attributes(worker_id=worker_name()):
                self._loop()
                self.health.stopping = True
                self.feeds.close()
                self.handout.drain(self.settings.shutdown_grace)
        finally:
            self.feeds.close()
            self.handout.stop()
            self.wakeup.close()
            if self._server is not None:
                self._server.stop()
                self._server = None
        return self.handout.stats

    def serve_health(self) -> int:
        """Start serving /healthz and /metrics on ``settings.health_port`` (``run()`` does
        it when not done yet); return the port. Raises OSError if it cannot listen."""
        from .health_server import HealthServer  # only with --health-port (start-up time)

        port = self.settings.health_port or 0
        server = HealthServer(port, verdict=self.health.verdict, metrics=self.metrics_text)
        self._server = server.start()
        return server.port

    def metrics_text(self) -> str:
        """``/metrics``: the children's attempts counted here, and the worker's state."""
        handout = self.handout
        gauges = {
            "in_flight": (
                "Executions handed to a process and not finished.",
                len(handout.in_flight),
            ),
            "backlog": (
                "Due executions this worker has read and not handed out yet (not the queue's"
                " depth: see manage.py tasks_check).",
                len(handout.backlog),
            ),
            "up": ("1 while /healthz answers 200.", int(self.health.verdict().healthy)),
            "firestore_reachable": (
                "0 while the last poll or listener could not reach Firestore.",
                int(not self.outage.cut_off),
            ),
            "loop_last_step_seconds": (
                "Seconds since the worker loop last took a turn.",
                round(self.health.since_step(), 3),
            ),
            "processes_started_total": (
                "Worker processes started.",
                handout.stats.processes_started,
            ),
        }
        return handout.metrics.render(gauges)

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
        self.wakeup.clear()  # a delivery (or a signal) from now on wakes the next wait
        self.health.stepped()
        now = time.monotonic()
        if self.feeds.open and self.feeds.failed(now):
            logger.info("listener lost (%s); polling until Firestore answers", self.feeds.error)
            self.feeds.close()
            state.listen_after = now + RELISTEN_BACKOFF
            state.next_poll = now
        if now >= state.next_group_sweep:
            state.next_group_sweep = now + GROUP_SWEEP_INTERVAL
            finished = self.handout.stats.finished
            idle = finished == state.swept_after
            if not idle or now >= state.last_group_sweep + GROUP_SWEEP_IDLE_INTERVAL:
                state.swept_after, state.last_group_sweep = finished, now
                self._sweep_groups()
        if self.feeds.open:
            return self._listen_step(state)
        return self._poll_step(state)

    def _sweep_groups(self) -> None:
        """Complete groups whose last member's check was lost (its worker died)."""
        for backend in self.settings.backends:
            try:
                sweep_groups(backend)
            except Exception:
                logger.warning("group sweep failed backend=%s", backend.alias, exc_info=True)

    def _listen_step(self, state: _LoopState) -> bool:
        """One turn while listening: act on what the listeners delivered, then sleep
        until the next thing due (or a delivery)."""
        settings, handout, feeds = self.settings, self.handout, self.feeds
        now = time.monotonic()
        if now - feeds.refreshed_at >= REFRESH:
            feeds.refresh()
            state.next_reclaim = min(state.next_reclaim, now)  # the safety check
        if not feeds.current:  # the first results are on their way (a delivery wakes)
            self._collect(0.5)
            return False
        if not feeds.announced:
            feeds.announced = True
            logger.info("listening for work and schedules (no polling while they answer)")
        if settings.backends:
            self.outage.answered(settings.backends[0].executions.settings.target())
        if self.cron is not None and (feeds.take_schedules_changed() or now >= state.next_cron):
            schedules = feeds.schedules()
            server_now = settings.backends[0].executions.clock.now()
            self.cron.tick(server_now, schedules)
            due = self.cron.next_due(schedules)
            wait_for = REFRESH if due is None else (due - server_now).total_seconds()
            state.next_cron = now + max(0.0, min(wait_for, REFRESH))
        if handout.runner.running and now >= state.next_force:
            handout.force_cancels()  # cloud_run_jobs mode, while its processes run
            state.next_force = now + settings.poll_interval
        if not all(handout.took(i) for i in feeds.take_left()):
            # Another worker took one: its lease can expire a lease length from now.
            state.next_reclaim = min(state.next_reclaim, now + self._lease_length)
        if now >= state.next_reclaim:
            soonest = handout.reclaim(limit=settings.batch_size)
            wait_for = REFRESH if soonest is None else min(soonest, REFRESH)
            state.next_reclaim = now + wait_for
        found: int | None = None  #: new executions found by a poll in this turn
        if feeds.paused:
            not_due = None
            found = self._burst_poll(state, now)
        else:
            not_due = handout.offer(feeds.ready())
            capacity = len(handout.backlog) < max(1, settings.batch_size // 2)
            if feeds.full() and not_due is None:
                # A burst: stop listening (the claims would be billed as the executions
                # leave the window); polls fetch the next batches.
                feeds.pause_ready()
                state.short = False
            elif feeds.full() and not_due is not None and capacity and now >= state.next_poll:
                # Executions not due yet fill a window: due ones of a lower priority may
                # wait behind them. Poll for those (rare: mixed priorities, delays).
                handout.poll(limit=settings.batch_size, reclaim=False)
                state.next_poll = now + settings.poll_interval
        handout.assign()
        idle = not handout.backlog and not handout.busy()
        if settings.burst and idle and not feeds.ready():
            # Confirm with a poll (unless this turn's came back empty): a retry written a
            # moment ago may not be delivered yet.
            if found != 0:
                found = handout.poll(limit=settings.batch_size, reclaim=True)
            if found == 0 and not self._retries_soon():
                return True
            if not handout.backlog:
                self._collect(settings.poll_interval)
            return False
        deadlines = [state.next_reclaim, feeds.refreshed_at + REFRESH]
        if self.cron is not None:
            deadlines.append(state.next_cron)
        if not_due is not None:
            deadlines.append(now + not_due)
        if handout.runner.running:
            deadlines.append(state.next_force)
        if feeds.full() and not_due is not None:
            deadlines.append(state.next_poll)
        if feeds.paused and not handout.backlog and handout.room() and not handout.unclaimed():
            deadlines.append(state.next_poll)  # the burst's next poll (children wake too)
        self._collect(max(0.0, min(deadlines) - time.monotonic()))
        return False

    def _burst_poll(self, state: _LoopState, now: float) -> int | None:
        """While the ready listeners are paused (a burst): poll for the next batch once
        the backlog is empty, a process is free and every chunk handed out is claimed
        (its process says so), so that no poll reads again what the backlog holds or a
        claim is about to take; listen again once a poll came back short and its
        executions are claimed. Returns how many new executions a poll found (None: no
        poll)."""
        handout, feeds = self.handout, self.feeds
        # No window shows the claims of other workers now: check leases a lease length
        # from now at the latest (a lease taken meanwhile cannot expire sooner).
        state.next_reclaim = min(state.next_reclaim, now + self._lease_length)
        if handout.backlog or not handout.room() or handout.unclaimed():
            return None  # a poll now would read again what is handed out (or waits)
        if state.short:
            feeds.resume_ready()
            return None
        if now < state.next_poll:
            return None
        found = handout.poll(limit=self.settings.batch_size, reclaim=False)
        state.short = not handout.last_poll_full
        # A poll that found only executions already handed out (their claims on the way)
        # waits a poll interval before the next one.
        state.next_poll = now if found else now + self.settings.poll_interval
        if state.short and not handout.backlog and not (self.settings.burst and found == 0):
            feeds.resume_ready()
        return found

    def _poll_step(self, state: _LoopState) -> bool:
        """One turn without listeners: poll on the interval (the loop as it always was)."""
        settings = self.settings
        low_water = max(1, settings.batch_size // 2)
        now = time.monotonic()
        if now >= state.next_poll and self.cron is not None:
            self.cron.tick(settings.backends[0].executions.clock.now())
            self.handout.force_cancels()
        # Poll when the backlog runs low, on the poll interval, or at once while the
        # last poll came back full (there is more): the next batch is fetched while
        # the processes work on the current one.
        handout = self.handout
        wanted = len(handout.backlog) < low_water and (now >= state.next_poll or state.more)
        found: int | None = None  #: new executions found by this turn's reclaiming poll
        if wanted and not (settings.once and state.polled_once):
            reclaim = now >= state.next_reclaim
            polled = self._poll(reclaim=reclaim)
            found = polled if reclaim else None
            state.more = polled >= low_water
            state.polled_once = True
            state.next_poll = now + settings.poll_interval
            if reclaim:
                state.next_reclaim = now + max(settings.poll_interval, RECLAIM_INTERVAL)
        handout.assign()
        idle = not handout.backlog and not handout.busy()
        if settings.once and state.polled_once and idle:
            return True
        if settings.burst and state.polled_once and idle and not state.more:
            # Confirm with a poll, unless this turn's came back empty (nothing ran or
            # finished since: a worker's start on an empty queue sends one poll, not two).
            if found != 0:
                found = self._poll(reclaim=True)
            if found == 0 and not self._retries_soon():
                return True
            if not handout.backlog:
                self._collect(settings.poll_interval)
            return False
        if self._may_listen(state):
            # Firestore answered the last poll: follow it from now on (the ready
            # windows paused if it came back full: a burst, see _burst_poll).
            self.feeds.start(paused=handout.last_poll_full)
            state.short = False
            state.next_reclaim = state.next_cron = 0.0
            state.next_poll = now
            return False
        if state.more and len(handout.backlog) < low_water:
            wait = 0.0
        else:
            wait = max(0.0, state.next_poll - time.monotonic())
        self._collect(wait)
        return False

    def _may_listen(self, state: _LoopState) -> bool:
        settings = self.settings
        return (
            settings.listen
            and not settings.once
            and bool(settings.backends)
            and state.polled_once
            and time.monotonic() >= state.listen_after
        )
