"""What ``run_tasks`` hands a child process, and how it is run or, failing that, failed.

A :class:`Job` is a chunk of executions of one backend (one execution in
``cloud_run_jobs`` mode). A warm worker process runs it with :func:`run_chunk`; when no
process could be started to run it, the worker records it with :func:`fail_chunk`.
Each execution comes back as a :class:`Done`.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

from ..exceptions import WorkerStartError
from ..execution.attempt import Attempt
from ..execution.outcome import AttemptResult, Outcome, error_type
from ..execution.recorders import BufferedRecorder
from ..registry import get_backend
from ..store import TaskExecution, transitions
from ..store.errors import LeaseLost
from ..store.executions import Step


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """Attempts to start, in order: which backend, which executions (as last read)."""

    backend: str
    executions: tuple[TaskExecution, ...]

    @property
    def ids(self) -> list[str]:
        return [e.id for e in self.executions]


@dataclass(frozen=True, slots=True, kw_only=True)
class Done:
    """What became of one execution of a job (logged by the worker)."""

    execution_id: str
    outcome: str
    detail: str = ""
    #: For the worker's metrics and log records (see worker/metrics.py):
    duration: float | None = None  #: seconds the task ran (None: it did not run)
    error_class: str = ""  #: the failed attempt's exception class path
    attempt: int | None = None  #: the attempt's number, once claimed
    worker_id: str = ""  #: the process that ran it


#: A finished job and what became of each of its executions.
Finished = tuple[Job, list[Done]]

#: What a warm process sends once its chunk's claim is committed, before running it:
#: from then on a poll no longer reads the chunk's executions (they left READY).
CLAIMED = "claimed"


def not_started(job: Job) -> Finished:
    """A job no process ran (nothing was claimed): its executions are simply polled again."""
    return job, [Done(execution_id=i, outcome="not_started") for i in job.ids]


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _detail(result: AttemptResult) -> str:
    return f"error={result.error}" if result.error else ""


def _done(result: AttemptResult, name: str, execution_id: str | None = None) -> Done:
    """What became of one attempt, as the worker's child reports it."""
    execution = result.execution
    return Done(
        execution_id=execution_id or (execution.id if execution is not None else "?"),
        outcome=str(result.outcome),
        detail=_detail(result),
        duration=result.duration,
        error_class=error_type(result) or "",
        attempt=execution.attempts if execution is not None else None,
        worker_id=name,
    )


def run_chunk(
    job: Job, name: str, stop: threading.Event, on_claimed: Callable[[], None] | None = None
) -> list[Done]:
    """Claim a chunk of executions in one commit (then ``on_claimed()``), run them in
    turn, batch the results."""
    backend = get_backend(job.backend)
    store = backend.executions
    duration = backend.config.lease_duration
    leases = store.claim_many(
        job.executions, worker_id=name, lease_duration=duration, backend=backend.alias
    )
    if on_claimed is not None:
        on_claimed()
    claimed = {lease.execution_id for lease in leases}
    done = [Done(execution_id=i, outcome="refused") for i in job.ids if i not in claimed]
    recorder = BufferedRecorder(store)
    try:
        for index, lease in enumerate(leases):
            if stop.is_set():
                # Shutting down: hand back what this chunk has not started.
                for waiting in leases[index:]:
                    recorder.write(waiting, _release_step(waiting.owner), _released)
                break
            if lease.expires_at is not None and lease.expires_at - store.clock.now() < duration / 2:
                try:  # it waited its turn for a while: renew before starting
                    lease = store.renew(lease, lease_duration=duration)
                except LeaseLost:
                    done.append(Done(execution_id=lease.execution_id, outcome="lease_lost"))
                    continue
            attempt = Attempt(backend, lease.execution_id, worker_id=name, recorder=recorder)
            result = attempt.execute(lease)
            if result is not None:
                recorder.results.append(result)
    finally:
        results = recorder.close()
    done += [_done(result, name) for result in results]
    return done


def fail_chunk(job: Job, name: str, error: str) -> list[Done]:
    """Record every execution of a job no process could start as FAILED, with ``error``
    (the store's usual finishing path: claim, then a final failure)."""
    backend = get_backend(job.backend)
    done = []
    for execution in job.executions:
        attempt = Attempt(backend, execution.id, worker_id=name, known=execution)
        result = attempt.fail_unstarted(WorkerStartError(error))
        done.append(_done(result, name, execution.id))
    return done


def _release_step(owner: str) -> Step:
    return lambda current, now: transitions.release(current, owner=owner)


def _released(written: TaskExecution | LeaseLost) -> AttemptResult:
    if isinstance(written, LeaseLost):
        return AttemptResult(outcome=Outcome.LEASE_LOST)
    return AttemptResult(outcome=Outcome.RELEASED, execution=written)
