"""The processes that run attempts for ``run_tasks``.

``cloud_tasks`` mode keeps warm worker processes (spawned, never forked: gRPC channels
must not cross a fork), each running one attempt at a time in its main thread so a
timeout or SIGTERM can interrupt it. ``cloud_run_jobs`` mode starts
``python -m django execute_task <id>`` per attempt, as Cloud Run Jobs would.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from ..exceptions import LeaseLost
from ..store import TaskExecution
from ..store.client import has_clients

logger = logging.getLogger(__name__)


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
    """What a child reports back."""

    execution_id: str
    outcome: str
    detail: str = ""


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _run_chunk(job: Job, name: str, stop: threading.Event) -> list[Done]:
    """Claim a chunk of executions in one commit, run them in turn, batch the results."""
    from django.tasks import task_backends

    from ..execution.attempt import Attempt
    from ..execution.recorders import BufferedRecorder

    backend: Any = task_backends[job.backend]
    store = backend.executions
    duration = backend.config.lease_duration
    leases = store.claim_many(
        job.executions, worker_id=name, lease_duration=duration, backend=backend.alias
    )
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
    for result in results:
        if result.execution is not None:
            done.append(Done(execution_id=result.execution.id, outcome=str(result.outcome)))
        else:
            done.append(Done(execution_id="?", outcome=str(result.outcome)))
    return done


def _release_step(owner: str) -> Any:
    from ..store import transitions

    return lambda current, now: transitions.release(current, owner=owner)


def _released(written: Any) -> Any:
    from ..execution.attempt import AttemptResult, Outcome

    if isinstance(written, LeaseLost):
        return AttemptResult(outcome=Outcome.LEASE_LOST)
    return AttemptResult(outcome=Outcome.RELEASED, execution=written)


def _child_main(conn: Connection, log_level: int) -> None:
    """Entry point of a warm worker process."""
    # Ctrl-C reaches the whole process group; the parent decides what happens.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop = threading.Event()
    # SIGTERM between attempts: finish the current chunk by handing the rest back.
    # (During an attempt, interruptible() raises TaskCancelledError in the task instead.)
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    import django
    from django.apps import apps

    if not apps.ready:  # spawned, not forked
        django.setup()
    name = worker_name()
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        try:
            done = _run_chunk(job, name, stop)
        except Exception as exc:  # the store failed (e.g. Firestore unreachable): report, go on
            logger.exception("chunk crashed execution_ids=%s", job.ids)
            done = [Done(execution_id=i, outcome="error", detail=repr(exc)) for i in job.ids]
        try:
            conn.send(done)
        except (BrokenPipeError, OSError):
            return
        if stop.is_set():
            return


@dataclass
class WarmChild:
    """One warm worker process and the job it is running, if any."""

    process: Any
    conn: Connection
    job: Job | None = None

    @property
    def busy(self) -> bool:
        return self.job is not None


@dataclass
class WarmPool:
    """``size`` warm worker processes."""

    size: int
    log_level: int = logging.WARNING
    children: list[WarmChild] = field(default_factory=list)

    def start(self) -> None:
        while len(self.children) < self.size:
            self.children.append(self._spawn())

    def _spawn(self) -> WarmChild:
        # Forking is fast (everything is already imported and Django is set up) and safe
        # as long as this process has no gRPC channel yet; afterwards, spawn.
        method = "spawn" if has_clients() else "fork"
        context: Any = multiprocessing.get_context(method)
        parent_conn, child_conn = context.Pipe()
        process = context.Process(
            target=_child_main, args=(child_conn, self.log_level), daemon=True
        )
        process.start()
        child_conn.close()
        return WarmChild(process=process, conn=parent_conn)

    def idle(self) -> list[WarmChild]:
        return [c for c in self.children if not c.busy and c.process.is_alive()]

    def busy(self) -> list[WarmChild]:
        return [c for c in self.children if c.busy]

    def submit(self, child: WarmChild, job: Job) -> None:
        child.job = job
        child.conn.send(job)

    def collect(self, timeout: float) -> list[tuple[Job, list[Done]]]:
        """Wait up to ``timeout`` for results; replace children that died."""
        from multiprocessing.connection import wait

        busy = self.busy()
        finished: list[tuple[Job, list[Done]]] = []
        ready = wait([c.conn for c in busy], timeout=timeout) if busy else []
        for child in busy:
            if child.conn in ready:
                try:
                    done = child.conn.recv()
                except (EOFError, OSError):
                    done = None
                if done is not None and child.job is not None:
                    finished.append((child.job, done))
                    child.job = None
                    continue
            if not child.process.is_alive() and child.job is not None:
                # The process died mid-attempt: its leases expire and the attempts are reclaimed.
                crashed = [Done(execution_id=i, outcome="crashed") for i in child.job.ids]
                finished.append((child.job, crashed))
                child.job = None
        self.children = [c for c in self.children if c.process.is_alive()]
        self.start()
        return finished

    def terminate_busy(self) -> None:
        """SIGTERM the children still running an attempt (they hand it back)."""
        for child in self.busy():
            if child.process.is_alive():
                os.kill(child.process.pid, signal.SIGTERM)

    def stop(self, *, kill: bool = False) -> None:
        for child in self.children:
            if kill:
                child.process.kill()
            else:
                with contextlib.suppress(BrokenPipeError, OSError):
                    child.conn.send(None)
        for child in self.children:
            child.process.join(timeout=5)
            if child.process.is_alive():
                child.process.kill()
        self.children = []


@dataclass
class JobProcess:
    """One ``execute_task`` subprocess (cloud_run_jobs mode)."""

    job: Job
    process: subprocess.Popen[bytes]
    sigtermed: bool = False


@dataclass
class JobRunner:
    """Start one process per attempt, at most ``size`` at a time."""

    size: int
    running: list[JobProcess] = field(default_factory=list)

    def free(self) -> int:
        return self.size - len(self.running)

    def submit(self, job: Job) -> None:
        (execution,) = job.executions
        env = dict(os.environ)
        env.update(
            CLOUD_RUN_JOB=job.backend,
            CLOUD_RUN_EXECUTION=f"local-{execution.id}-{execution.attempts}",
            CLOUD_RUN_TASK_INDEX="0",
            CLOUD_RUN_TASK_COUNT="1",
            CLOUD_RUN_TASK_ATTEMPT=str(execution.attempts),
        )
        command = [
            sys.executable,
            "-m",
            "django",
            "execute_task",
            execution.id,
            "--backend",
            job.backend,
        ]
        # A new session: Ctrl-C in the terminal reaches the worker, not its jobs.
        process = subprocess.Popen(command, env=env, start_new_session=True)
        self.running.append(JobProcess(job=job, process=process))

    def collect(self) -> list[tuple[Job, list[Done]]]:
        finished = []
        for item in list(self.running):
            code = item.process.poll()
            if code is not None:
                self.running.remove(item)
                done = [Done(execution_id=i, outcome=f"exit {code}") for i in item.job.ids]
                finished.append((item.job, done))
        return finished

    def sigterm(self, execution_id: str) -> bool:
        """Stop one attempt now (forceful cancel), as Cloud Run's cancel_execution does."""
        for item in self.running:
            if execution_id in item.job.ids and not item.sigtermed:
                item.sigtermed = True
                item.process.send_signal(signal.SIGTERM)
                return True
        return False

    def terminate_all(self) -> None:
        for item in self.running:
            if item.process.poll() is None:
                item.process.send_signal(signal.SIGTERM)

    def kill_all(self) -> None:
        for item in self.running:
            if item.process.poll() is None:
                item.process.kill()
