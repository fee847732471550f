"""Writing the planned commits of a bulk enqueue several at a time.

Commits sent one after another cost one round trip each, and the server applies one
at a time; a few in flight together overlap both (each commit is still atomic). The
price is that a failure no longer leaves a *prefix* of the calls written: any commit
may fail while the others are taken, so the outcome names the calls written and the
calls not written. Once a commit has failed, the commits not started yet are not
sent (an outage would make each wait its full timeout): they are reported not written.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ...exceptions import StoreUnavailable
from ..documents import TaskExecution
from .base import NewBatch

#: Commits of one bulk enqueue in flight together.
COMMIT_CONCURRENCY = 4


@dataclass
class BatchesWritten:
    """What became of each planned commit."""

    written: list[TaskExecution] = field(default_factory=list)  #: in call order
    not_written: list[int] = field(default_factory=list)  #: call indexes, ascending
    errors: list[Exception] = field(default_factory=list)  #: in commit order

    @property
    def outage(self) -> StoreUnavailable | None:
        """The first StoreUnavailable of a failed commit (in call order), if any."""
        for error in self.errors:
            if isinstance(error, StoreUnavailable):
                return error
        return None

    @property
    def not_written_spans(self) -> str:
        """``not_written`` as ranges: ``[0, 1, 2, 5]`` -> ``"0-2, 5"``."""
        spans: list[list[int]] = []
        for i in self.not_written:
            if spans and spans[-1][1] == i - 1:
                spans[-1][1] = i
            else:
                spans.append([i, i])
        return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)

    @property
    def maybe_written(self) -> bool:
        """May a failed commit still have been applied (see StoreUnavailable)?"""
        return any(getattr(e, "maybe_written", False) for e in self.errors)


def write_batches(
    write: Callable[[NewBatch], list[TaskExecution]],
    batches: Sequence[NewBatch],
    *,
    concurrency: int = COMMIT_CONCURRENCY,
) -> BatchesWritten:
    """Apply ``write`` (one commit) to every batch, up to ``concurrency`` at once; never
    raises: each commit's exception is kept in the outcome. Commits not started when
    one has failed are skipped (reported not written, with no error of their own)."""
    failed = threading.Event()

    def attempt(batch: NewBatch) -> list[TaskExecution] | None:
        if failed.is_set():
            return None  # skipped: an earlier failure
        try:
            return write(batch)
        except Exception:
            failed.set()
            raise

    workers = max(1, min(concurrency, len(batches)))
    if workers == 1:
        outcomes = [_settled(attempt, batch) for batch in batches]
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix="enqueue-commit") as pool:
            futures = [
                pool.submit(contextvars.copy_context().run, _settled, attempt, batch)
                for batch in batches
            ]
        outcomes = [future.result() for future in futures]
    result = BatchesWritten()
    index = 0
    for batch, (written, error) in zip(batches, outcomes, strict=True):
        size = len(batch.documents)
        if written is None:
            result.not_written += range(index, index + size)
            if error is not None:
                result.errors.append(error)
        else:
            result.written += written
        index += size
    return result


def _settled(
    attempt: Callable[[NewBatch], list[TaskExecution] | None], batch: NewBatch
) -> tuple[list[TaskExecution] | None, Exception | None]:
    try:
        return attempt(batch), None
    except Exception as exc:  # reported in the outcome
        return None, exc
