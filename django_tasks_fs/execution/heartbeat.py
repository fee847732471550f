"""A thread that renews an attempt's lease and notices cancel requests and takeovers."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from ..exceptions import LeaseLost
from ..store import ExecutionStore, Lease

logger = logging.getLogger(__name__)


class Heartbeat:
    """Renew ``lease`` every ``interval`` until stopped.

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
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._stopped_once = False
        self._thread: threading.Thread | None = None

    @property
    def lease(self) -> Lease:
        with self._lock:
            return self._lease

    def start(self) -> Heartbeat:
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat-{self._lease.execution_id}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, join_timeout: float) -> Lease:
        """Stop renewing; return the newest lease."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(join_timeout)
            if self._thread.is_alive():
                logger.error(
                    "heartbeat thread did not stop execution_id=%s", self._lease.execution_id
                )
        return self.lease

    def _stop_needed(self) -> None:
        if not self._stopped_once and self.on_stop_needed is not None:
            self._stopped_once = True
            self.on_stop_needed()

    def _run(self) -> None:
        last_success = time.monotonic()
        while not self._stop.wait(self.interval):
            try:
                renewed = self.store.renew(self.lease, lease_duration=self.duration)
            except LeaseLost:
                logger.warning("lease lost execution_id=%s", self._lease.execution_id)
                self.lost.set()
                self.cancelled.set()
                self._stop_needed()
                return
            except Exception:
                # Firestore unreachable: keep trying until the lease would have expired.
                if time.monotonic() - last_success > self.duration.total_seconds():
                    logger.exception(
                        "heartbeat failing past the lease execution_id=%s", self._lease.execution_id
                    )
                    self.lost.set()
                    self.cancelled.set()
                    self._stop_needed()
                    return
                logger.warning(
                    "heartbeat failed, retrying execution_id=%s",
                    self._lease.execution_id,
                    exc_info=True,
                )
                continue
            last_success = time.monotonic()
            with self._lock:
                self._lease = renewed
            if renewed.cancel_requested:
                self.cancelled.set()
                if renewed.force_cancel:
                    self._stop_needed()
