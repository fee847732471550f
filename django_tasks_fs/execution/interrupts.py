"""Stopping a running task: SIGTERM and the timeout both raise TaskCancelledError in it.

Only possible when the attempt runs in the main thread of its process (the local
worker's processes, ``execute_task`` on Cloud Run Jobs). What gets recorded is decided
afterwards from the execution's state, not from the signal: a cancel request records a
cancellation, an elapsed timeout a TaskTimeout, anything else (shutdown) hands the
attempt back.
"""

from __future__ import annotations

import _thread
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType

from ..exceptions import TaskCancelledError


@dataclass
class Interrupts:
    """What stopped the attempt, as seen from inside its process."""

    timeout: float | None = None
    started: float = field(default_factory=time.monotonic)
    signalled: bool = False  #: a SIGTERM (or interrupt()) arrived
    armed: bool = False  #: raising into the task is allowed right now
    enabled: bool = False  #: running in the main thread with handlers installed

    @property
    def timed_out(self) -> bool:
        return self.timeout is not None and time.monotonic() - self.started >= self.timeout

    def interrupt(self) -> None:
        """Stop the task from another thread (forceful cancel, lost lease)."""
        if self.enabled:
            _thread.interrupt_main(signal.SIGTERM)


@contextmanager
def interruptible(timeout: float | None) -> Iterator[Interrupts]:
    """Install SIGTERM / timer handlers while the task body runs (main thread only)."""
    state = Interrupts(timeout=timeout)
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        state.signalled = signum == signal.SIGTERM or state.signalled
        if state.armed:
            state.armed = False  # raise once; the recording that follows must not be cut short
            reason = "timed out" if signum == signal.SIGALRM else "SIGTERM received"
            raise TaskCancelledError(reason)

    previous_term = signal.signal(signal.SIGTERM, stop)
    previous_alarm = signal.signal(signal.SIGALRM, stop)
    state.enabled = True
    if timeout is not None:
        signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        yield state
    finally:
        state.armed = False
        state.enabled = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_alarm)
        signal.signal(signal.SIGTERM, previous_term)
