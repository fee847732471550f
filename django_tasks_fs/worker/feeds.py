"""What ``run_tasks`` learns from Firestore listeners instead of polling: the due
executions of each backend, and the scheduled tasks.

Each backend has a listener on its ready query (the first ``window`` READY executions
due by a horizon a few minutes ahead, best first): Firestore sends the result once,
then each execution that enters, changes in or leaves it, and bills a read for each
(an idle listener costs nothing). The horizon moves on by listening again every
``REFRESH`` seconds, which also re-reads the window: a safety net if a listener ever
fell silent. Backends with local cron also follow their scheduled tasks.

Callbacks arrive on the client's threads; they only store what they got and set the
``Wakeup`` the loop waits on (with the children's pipes). A listener that breaks
(Firestore unreachable) or does not answer within ``START_TIMEOUT`` makes ``failed``
true: the loop closes the feeds and polls until Firestore answers, then listens again.

A burst (a window full of due executions): the loop pauses the ready listeners
(``pause_ready``) and fetches the next batches with polls, one when the backlog is
empty and a process is free; it resumes them (``resume_ready``) once a poll comes back
short. A paused listener is closed: the claims that take executions out of its result
are not billed (a listener is billed a read for each document that enters its result
and again when one leaves it; a poll, once per document).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from ..backends.base import FirestoreBackend
from ..store import ScheduledTask, TaskExecution
from ..store.ops import Listening

#: Seconds between re-listens of the ready windows (each moves the horizon on). Also the
#: bound on how long a listener that fell silent without an error (a stalled stream) can
#: hide new work: 1 billed read a minute for an idle window, about 43,000 in 30 days.
REFRESH = 60.0
#: How far ahead of now a ready window reaches when it is opened.
HORIZON = timedelta(seconds=2 * REFRESH)
#: Seconds a new listener gets to deliver its first result before it counts as broken.
START_TIMEOUT = 30.0


class Wakeup:
    """Wakes the loop from another thread: an event, and a pipe the loop can wait on
    together with its children's pipes (``multiprocessing.connection.wait``)."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._event = threading.Event()

    def fileno(self) -> int:
        return self._read

    def set(self) -> None:
        self._event.set()
        with contextlib.suppress(OSError):  # the pipe is full (woken already) or closed
            os.write(self._write, b"!")

    def is_set(self) -> bool:
        return self._event.is_set()

    def clear(self) -> None:
        self._event.clear()
        try:
            while os.read(self._read, 4096):
                pass
        except BlockingIOError:
            pass

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)

    def close(self) -> None:
        os.close(self._read)
        os.close(self._write)


@dataclass
class _Window:
    """One backend's ready window, as its listener last delivered it."""

    backend: FirestoreBackend
    limit: int
    listener: Listening | None = None
    executions: list[TaskExecution] = field(default_factory=list)
    current: bool = False  #: the first result has arrived
    left: list[str] = field(default_factory=list)  #: ids that left since taken
    generation: int = 0  #: which listener's results count (refresh() replaces it)
    paused: bool = False  #: closed for a burst (pause_ready): polls fetch the work


class Feeds:
    """The listeners of one worker (see the module docstring)."""

    def __init__(
        self,
        backends: Sequence[FirestoreBackend],
        *,
        queues_of: dict[str, list[str] | None],
        window: int,
        cron_backends: Sequence[FirestoreBackend],
        wakeup: Wakeup,
    ) -> None:
        self.wakeup = wakeup
        self._queues_of = queues_of
        self._lock = threading.Lock()
        self._windows = [_Window(b, window) for b in backends]
        self._cron_backends = list(cron_backends)
        self._schedules: dict[str, tuple[ScheduledTask, ...]] = {}
        self._schedule_listeners: list[Listening] = []
        self._schedules_changed = False
        self.error: Exception | None = None  #: why a listener broke
        self.opened_at: float | None = None  #: time.monotonic() of open(); None: closed
        self.refreshed_at = 0.0
        self.announced = False  #: the loop said it listens (once per start())

    # -- lifetime ----------------------------------------------------------------------

    @property
    def open(self) -> bool:
        return self.opened_at is not None

    def start(self, *, paused: bool = False) -> None:
        """Open every listener (results arrive later, on other threads); ``paused``:
        not the ready listeners yet (a burst is under way, see ``pause_ready``)."""
        self.error = None
        self.announced = False
        self.opened_at = self.refreshed_at = time.monotonic()
        with self._lock:
            self._schedules = {}
            self._schedules_changed = False
        for window in self._windows:
            if paused:
                with self._lock:
                    window.current, window.paused = True, True
            else:
                self._listen(window)
        for backend in self._cron_backends:
            self._schedule_listeners.append(
                backend.schedules.listen(self._schedules_of(backend.alias), self._broken)
            )

    def _listen(self, window: _Window) -> None:
        backend = window.backend
        store = backend.executions
        with self._lock:
            window.current = False
            window.paused = False
            window.generation += 1
            generation = window.generation
        self.refreshed_at = time.monotonic()
        window.listener = store.listen_ready(
            backend=backend.alias,
            queues=self._queues_of[backend.alias],
            limit=window.limit,
            until=store.clock.now() + HORIZON,
            on_change=self._changed(window, generation),
            on_error=self._broken,
        )

    def refresh(self) -> None:
        """Listen to the ready windows again, with a horizon from now (paused: later)."""
        self.refreshed_at = time.monotonic()
        for window in self._windows:
            if window.paused:
                continue
            old = window.listener
            self._listen(window)
            if old is not None:
                old.close()

    @property
    def paused(self) -> bool:
        """Are the ready listeners closed for a burst?"""
        return any(w.paused for w in self._windows)

    def pause_ready(self) -> None:
        """Close the ready listeners (a burst: polls fetch the work until one is short).
        What they delivered last is forgotten: the loop's backlog holds it."""
        for window in self._windows:
            with self._lock:
                window.generation += 1  # a delivery on its way is ignored
                window.executions, window.left = [], []
                window.current, window.paused = True, True
            if window.listener is not None:
                window.listener.close()
                window.listener = None

    def resume_ready(self) -> None:
        """Listen to the ready windows again after a burst (a read per execution in the
        first result, 1 if it is empty)."""
        for window in self._windows:
            if window.paused:
                self._listen(window)

    def close(self) -> None:
        for window in self._windows:
            if window.listener is not None:
                window.listener.close()
                window.listener = None
            with self._lock:
                window.executions, window.current, window.left = [], False, []
                window.paused = False
                window.generation += 1
        for listener in self._schedule_listeners:
            listener.close()
        self._schedule_listeners = []
        self.opened_at = None

    # -- what the listeners say (their threads) --------------------------------------

    def _changed(
        self, window: _Window, generation: int
    ) -> Callable[[list[TaskExecution], list[str]], None]:
        def on_change(executions: list[TaskExecution], left: list[str]) -> None:
            with self._lock:
                if generation != window.generation:
                    return  # a listener replaced by refresh()
                window.executions = executions
                window.left += left
                window.current = True
            self.wakeup.set()

        return on_change

    def _schedules_of(self, alias: str) -> Callable[[tuple[ScheduledTask, ...]], None]:
        def on_change(schedules: tuple[ScheduledTask, ...]) -> None:
            with self._lock:
                self._schedules[alias] = schedules
                self._schedules_changed = True
            self.wakeup.set()

        return on_change

    def _broken(self, error: Exception) -> None:
        with self._lock:
            if self.error is None:
                self.error = error
        self.wakeup.set()

    # -- what the loop reads -----------------------------------------------------------

    def failed(self, now: float) -> bool:
        """A listener broke, or has not delivered its first result in time."""
        if self.error is not None:
            return True
        return (
            self.opened_at is not None
            and now - self.refreshed_at > START_TIMEOUT
            and not self.current
        )

    @property
    def current(self) -> bool:
        """Every listener has delivered its first result."""
        with self._lock:
            windows = all(w.current for w in self._windows)
            schedules = all(b.alias in self._schedules for b in self._cron_backends)
        return windows and schedules

    def ready(self) -> list[tuple[FirestoreBackend, TaskExecution]]:
        """Every execution in the ready windows (due or not yet), per backend."""
        with self._lock:
            return [(w.backend, e) for w in self._windows for e in w.executions]

    def full(self) -> bool:
        """Is some window full? Then due executions may wait outside it (behind
        executions of a higher priority that are not due yet)."""
        with self._lock:
            return any(len(w.executions) >= w.limit for w in self._windows)

    def take_left(self) -> list[str]:
        """Ids of executions that left a window since the last call."""
        with self._lock:
            left = [i for w in self._windows for i in w.left]
            for w in self._windows:
                w.left = []
        return left

    def schedules(self) -> dict[str, tuple[ScheduledTask, ...]]:
        with self._lock:
            return dict(self._schedules)

    def take_schedules_changed(self) -> bool:
        with self._lock:
            changed, self._schedules_changed = self._schedules_changed, False
        return changed
