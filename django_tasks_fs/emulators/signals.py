"""Stop cleanly on Ctrl-C and SIGTERM: the signal becomes an exception in the main thread,
so every ``with``/``finally`` block runs and child processes (Java) are stopped too."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequested(BaseException):
    """SIGINT or SIGTERM arrived. A BaseException, like KeyboardInterrupt, so that no
    ``except Exception`` on the way swallows it."""


class _State:
    deferring = 0  #: depth of signals_deferred() blocks
    pending: int | None = None  #: a stop signal that arrived while deferring


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    # One stop is enough: a second Ctrl-C must not interrupt the cleanup itself.
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    if _State.deferring:
        _State.pending = signum
        return
    raise StopRequested(signal.Signals(signum).name)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise StopRequested (main thread only)."""
    previous = {sig: signal.signal(sig, _raise_stop) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Raise a stop that arrives within the block only when the block has ended.

    For starting a child process: a stop between its fork and the moment we record its
    pid would leave it running with nobody to stop it. (Blocking the signals instead
    would be inherited by the child, which could then not be stopped at all.)
    """
    _State.deferring += 1
    try:
        yield
    finally:
        _State.deferring -= 1
    if not _State.deferring and _State.pending is not None:
        signum, _State.pending = _State.pending, None
        raise StopRequested(signal.Signals(signum).name)
