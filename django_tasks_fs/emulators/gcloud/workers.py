"""A pool of daemon threads: a stuck delivery never keeps the interpreter from exiting.

(``concurrent.futures`` joins its threads at exit, which could wait for a whole
dispatch deadline.)
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


class WorkerPool:
    """Run submitted calls on ``size`` daemon threads."""

    def __init__(self, size: int, name: str) -> None:
        self._calls: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]] | None]
        self._calls = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
            for i in range(size)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, call: Callable[..., Any], *args: Any) -> None:
        self._calls.put((call, args))

    def stop(self) -> None:
        """Let the threads end after their current call; queued calls are dropped."""
        while True:
            try:
                self._calls.get_nowait()
            except queue.Empty:
                break
        for _ in self._threads:
            self._calls.put(None)

    def _work(self) -> None:
        while (item := self._calls.get()) is not None:
            call, args = item
            try:
                call(*args)
            except Exception:
                logger.exception("background call crashed call=%r", call)
