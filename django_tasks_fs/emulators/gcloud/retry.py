"""Retry backoff shared by Cloud Tasks queues and Cloud Scheduler jobs.

Both services document the same curve: the interval starts at ``min_backoff``, doubles
``max_doublings`` times, then grows linearly by the last doubled interval, and is
capped at ``max_backoff``. With 10 s, 300 s and 3 doublings: 10, 20, 40, 80, 160, 240,
300, 300, ... seconds.
"""

from __future__ import annotations


def backoff(*, retry: int, min_backoff: float, max_backoff: float, max_doublings: int) -> float:
    """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
    if retry < 1:
        raise ValueError(f"retry counts from 1, not {retry!r}.")
    doublings = min(retry - 1, max(max_doublings, 0))
    interval = min_backoff * (1 << doublings)
    interval += (retry - 1 - doublings) * interval
    return max(min(interval, max_backoff), 0.0)
