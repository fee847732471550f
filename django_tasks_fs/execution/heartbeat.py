"""Lease renewal for running attempts, and notice of cancel requests and takeovers.

One background thread per process renews every running attempt's lease when it is
due: no thread is started per attempt, so a stream of short tasks costs nothing here.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from ..logging import task_extra
from ..store import ExecutionStore, Lease
from ..store.errors import LeaseLost

logger = logging.getLogger(__name__)

#: A running attempt gives its lease up this long (seconds; at most a tenth of the
#: lease) before it could expire unrenewed, so the next owner never meets it running.
STOP_MARGIN = 1.0


class Heartbeat:
    """Renew ``lease`` every ``interval`` seconds while the attempt runs.

    ``cancelled`` is set on a cancel request or a lost lease; ``lost`` only on a lost
    lease. ``on_stop_needed`` is called once when the attempt must stop at once (a
    forceful cancel, or the lease went to another attempt).
    """

    def __init__(
        self,
        store: ExecutionStore,
        lease: Lease,
        *,
        interval: float,
        duration: timedelta,
        on_stop_needed: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.interval = interval
        self.duration = duration
        self.on_stop_needed = on_stop_needed
        self.cancelled = threading.Event()
        self.lost = threading.Event()
        self._lease = lease
        self._beat = threading.Lock()  # held while a renewal is in flight
        self._stopped = False
        self._stop_called = False
        self._next = time.monotonic() + interval
        # When the lease may expire, on this process's monotonic clock: the server's
        # expiry is the renewal's commit time + duration, never before its send time.
        expires_at = lease.execution.lease_expires_at
        left = (expires_at - store.clock.now()).total_seconds() if expires_at else 0.0
        self._expiry = time.monotonic() + min(max(left, 0.0), duration.total_seconds())
        self._margin = min(STOP_MARGIN, duration.total_seconds() / 10)

    @property
    def lease(self) -> Lease:
        return self._lease

    def start(self) -> Heartbeat:
        _ticker().add(self)
        return self

    def stop(self, join_timeout: float) -> Lease:
        """Stop renewing (waiting for a renewal in flight); return the newest lease."""
        _ticker().remove(self)
        if self._beat.acquire(timeout=join_timeout):
            self._stopped = True
            self._beat.release()
        else:
            logger.error(
                "heartbeat did not stop in time execution_id=%s",
                self._lease.execution_id,
                extra=task_extra(self._lease.execution),
            )
            self._stopped = True
        return self._lease

    def due(self, now: float) -> bool:
        return not self._stopped and now >= self._next

    def _stop_needed(self) -> None:
        if not self._stop_called and self.on_stop_needed is not None:
            self._stop_called = True
            self.on_stop_needed()

    def beat(self) -> bool:
        """Renew once; return False when this heartbeat is over (lease lost)."""
        with self._beat:
            if self._stopped:
                return False
            sent = time.monotonic()
            self._next = sent + self.interval
            left = self._expiry - self._margin - sent
            if left <= 0:
                return self._give_up()
            try:
                # Bounded: a renewal stuck in a half-dead connection must not outlive
                # the lease while another worker takes the execution over.
                renewed = self.store.renew(self._lease, lease_duration=self.duration, timeout=left)
            except LeaseLost:
                logger.warning(
                    "lease lost execution_id=%s",
                    self._lease.execution_id,
                    extra=task_extra(self._lease.execution, outcome="lease_lost"),
                )
                return self._lose()
            except Exception:
                if time.monotonic() >= self._expiry - self._margin:
                    return self._give_up()
                logger.warning(
                    "heartbeat failed, retrying execution_id=%s",
                    self._lease.execution_id,
                    exc_info=True,
                    extra=task_extra(self._lease.execution),
                )
                self._next = min(self._next, self._expiry - self._margin)
                return True
            self._expiry = sent + self.duration.total_seconds()
            self._lease = renewed
        if renewed.cancel_requested:
            self.cancelled.set()
            if renewed.force_cancel:
                self._stop_needed()
        return True

    def _give_up(self) -> bool:
        """The lease is (about to be) gone without a renewal: stop before a new owner starts."""
        logger.error(
            "heartbeat failing past the lease execution_id=%s",
            self._lease.execution_id,
            extra=task_extra(self._lease.execution),
        )
        return self._lose()

    def _lose(self) -> bool:
        self.lost.set()
        self.cancelled.set()
        self._stop_needed()
        return False


class _Ticker:
    """The per-process thread that calls ``beat()`` on due heartbeats."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._heartbeats: set[Heartbeat] = set()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeats", daemon=True)
        self._thread.start()

    def add(self, heartbeat: Heartbeat) -> None:
        with self._lock:
            self._heartbeats.add(heartbeat)
        self._wake.set()

    def remove(self, heartbeat: Heartbeat) -> None:
        with self._lock:
            self._heartbeats.discard(heartbeat)

    def _run(self) -> None:
        while True:
            with self._lock:
                heartbeats = list(self._heartbeats)
            now = time.monotonic()
            for heartbeat in heartbeats:
                if heartbeat.due(now) and not heartbeat.beat():
                    self.remove(heartbeat)
            with self._lock:
                waits = [h._next - time.monotonic() for h in self._heartbeats]
            self._wake.wait(max(0.01, min(waits, default=1.0)))
            self._wake.clear()


_tickers: dict[int, _Ticker] = {}
_tickers_lock = threading.Lock()


def _ticker() -> _Ticker:
    # One per process id: a forked child needs its own thread.
    with _tickers_lock:
        ticker = _tickers.get(os.getpid())
        if ticker is None:
            ticker = _tickers[os.getpid()] = _Ticker()
        return ticker
