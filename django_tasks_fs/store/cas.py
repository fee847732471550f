"""The one compare-and-set loop: read, decide, write only if nobody wrote since, retry.

Every change to a document goes through ``compare_and_set``: ``write`` must raise
PreconditionFailed when the version decided on is no longer current (the document
operations do, given its update time); the loop then reads again and decides again,
with a jittered backoff so two writers that keep colliding drift apart.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import datetime

from ..exceptions import ContentionError as ContentionError  # re-exported: raised here
from .ops import PreconditionFailed

#: A compare-and-set gives up after this many lost races in a row.
MAX_CAS_ATTEMPTS = 50
#: The longest pause between two tries, in seconds.
MAX_BACKOFF = 0.05


def backoff(conflicts: int) -> float:
    """Seconds to wait after ``conflicts`` lost races: random, growing, capped."""
    return random.uniform(0, min(MAX_BACKOFF, 0.001 * 2**conflicts))


def compare_and_set[T, X](
    *,
    read: Callable[[], tuple[T, datetime]],
    decide: Callable[[T, datetime], tuple[T, X]],
    write: Callable[[T, T], T],
    known: T | None = None,
    now: Callable[[], datetime],
    subject: str,
) -> tuple[T, X]:
    """Write ``decide``'s new version of a document unless someone wrote first.

    ``read`` returns the current version and the server time of the read; ``known`` (a
    version already read) saves the first read, decided on at ``now()``. ``decide``
    returns the new version and what the caller needs besides (e.g. why a claim was
    refused); it may raise to refuse, and runs again after every lost race. ``write``
    (before, after) writes conditionally and returns the written version. Raises
    ContentionError, naming ``subject``, after MAX_CAS_ATTEMPTS lost races.
    """
    current = known
    for conflicts in range(MAX_CAS_ATTEMPTS):
        if current is None:
            current, at = read()
        else:
            at = now()
        after, extra = decide(current, at)
        try:
            return write(current, after), extra
        except PreconditionFailed:
            current = None
            time.sleep(backoff(conflicts))
    raise ContentionError(f"Gave up on {subject} after {MAX_CAS_ATTEMPTS} write conflicts.")
