"""Loaded by the clock-skew scenario's workers (on PYTHONPATH), which run under libfaketime.

With ``DONT_FAKE_MONOTONIC=1``, libfaketime 0.9.10 (Debian 12) breaks
``clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)``, which ``time.sleep`` uses since
Python 3.11: it fails at once with EINVAL
(https://github.com/wolfcw/libfaketime/issues/426). Waits with a timeout (locks,
events, select) are fine, so a sleep that fails so sleeps with select() instead.
Without DONT_FAKE_MONOTONIC those waits would hang instead.
"""

from __future__ import annotations

import errno
import select
import time

_sleep = time.sleep


def sleep(seconds: float) -> None:
    try:
        _sleep(seconds)
    except OSError as exc:
        if exc.errno != errno.EINVAL or seconds < 0:
            raise
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            select.select([], [], [], left)


time.sleep = sleep
