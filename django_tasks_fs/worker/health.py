"""Is ``run_tasks`` alive? What ``/healthz`` answers, from what the loop last saw.

The loop stamps each turn (``stepped``) and, before it sleeps, when it means to be back
(``waiting``): it waits for a listener's delivery or the next thing due,
``feeds.REFRESH`` at most. It is *stalled* when it is more than ``stall``
seconds late. Firestore is *unreachable* while the worker's outage report says so
(the last poll or listener failed with StoreUnavailable, see :mod:`.outage`): a probe
never sends a query of its own, so a probe costs nothing and cannot add load during an
outage.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from .outage import OutageReport

#: Seconds the loop may be late back from a wait before it counts as stalled.
DEFAULT_STALL = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    healthy: bool
    body: dict[str, Any]


class Health:
    """The loop's last signs of life, and the verdict a probe gets."""

    def __init__(self, outage: OutageReport, *, stall: float = DEFAULT_STALL) -> None:
        self.outage = outage
        self.stall = stall
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._stepped = self._started
        self._due_back = self._started  #: when the loop means to step again
        self.stopping = False  #: shutting down: running attempts finish, nothing new starts

    def stepped(self) -> None:
        """The loop took a turn."""
        now = time.monotonic()
        with self._lock:
            self._stepped = self._due_back = now

    def waiting(self, seconds: float) -> None:
        """The loop sleeps up to ``seconds`` (until a delivery or the next thing due)."""
        with self._lock:
            self._due_back = max(self._due_back, time.monotonic() + seconds)

    def since_step(self) -> float:
        """Seconds since the loop last took a turn."""
        with self._lock:
            return time.monotonic() - self._stepped

    def verdict(self) -> Verdict:
        """200 or 503, and why."""
        now = time.monotonic()
        with self._lock:
            stepped, due_back = self._stepped, self._due_back
        late = max(0.0, now - due_back)
        problems = []
        if late > self.stall and not self.stopping:
            problems.append(f"the worker loop is {late:.0f}s late (stalled)")
        if self.outage.cut_off:
            problems.append("Firestore unreachable (the last poll or listener failed)")
        body: dict[str, Any] = {
            "status": "unhealthy" if problems else "ok",
            "problems": problems,
            "last_step_seconds_ago": round(now - stepped, 3),
            "firestore_reachable": not self.outage.cut_off,
            "stopping": self.stopping,
        }
        return Verdict(healthy=not problems, body=body)
