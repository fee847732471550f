"""What ``run_tasks`` says about a Firestore outage: one WARNING when it is cut off,
one INFO when Firestore answers again, nothing in between (not a line per poll)."""

from __future__ import annotations

import logging
import time

from ..exceptions import StoreUnavailable

logger = logging.getLogger(__name__)


class OutageReport:
    """Tracks whether the worker is cut off from Firestore, and logs the changes."""

    def __init__(self) -> None:
        self._since: float | None = None  #: time.monotonic() of the first failure

    @property
    def cut_off(self) -> bool:
        return self._since is not None

    def failed(self, exc: StoreUnavailable) -> None:
        """A loop step could not reach Firestore."""
        if self._since is not None:
            logger.debug("still cut off from Firestore: %s", exc)
            return
        self._since = time.monotonic()
        logger.warning(
            "cut off from Firestore; retrying until it answers (running tasks carry on): %s",
            exc,
        )

    def answered(self, target: str) -> None:
        """Firestore answered a poll."""
        if self._since is None:
            return
        logger.info(
            "Firestore answers again after %.0fs of outage: %s",
            time.monotonic() - self._since,
            target,
        )
        self._since = None
