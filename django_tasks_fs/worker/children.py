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
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from ..store import TaskExecution

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """An attempt to start: which backend, which execution (as last read)."""

    backend: str
    execution: TaskExecution


@dataclass(frozen=True, slots=True, kw_only=True)
class Done:
    """What a child reports back."""

    execution_id: str
    outcome: str
    detail: str = ""


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _child_main(conn: Connection, log_level: int) -> None:
    """Entry point of a warm worker process."""
    # Ctrl-C reaches the whole process group; the parent decides what happens.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    import django

    django.setup()
    from django.tasks import task_backends

    from ..execution.attempt import Attempt

    name = worker_name()
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError, SystemExit):
            return
        if job is None:
            return
        try:
            result = Attempt(
                task_backends[job.backend],  # type: ignore[arg-type]
                job.execution.id,
                worker_id=name,
                known=job.execution,
            ).run()
            done = Done(
                execution_id=job.execution.id,
                outcome=str(result.outcome),
                detail=str(result.reason or ""),
            )
        except (
            Exception
        ) as exc:  # the store failed (e.g. Firestore unreachable): report, keep serving
            logger.exception("attempt crashed execution_id=%s", job.execution.id)
            done = Done(execution_id=job.execution.id, outcome="error", detail=repr(exc))
        try:
            conn.send(done)
        except (BrokenPipeError, OSError):
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
        context = multiprocessing.get_context("spawn")
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

    def collect(self, timeout: float) -> list[tuple[Job, Done]]:
        """Wait up to ``timeout`` for results; replace children that died."""
        from multiprocessing.connection import wait

        busy = self.busy()
        finished: list[tuple[Job, Done]] = []
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
                # The process died mid-attempt: its lease expires and the attempt is reclaimed.
                finished.append(
                    (child.job, Done(execution_id=child.job.execution.id, outcome="crashed"))
                )
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
        env = dict(os.environ)
        env.update(
            CLOUD_RUN_JOB=job.backend,
            CLOUD_RUN_EXECUTION=f"local-{job.execution.id}-{job.execution.attempts}",
            CLOUD_RUN_TASK_INDEX="0",
            CLOUD_RUN_TASK_COUNT="1",
            CLOUD_RUN_TASK_ATTEMPT=str(job.execution.attempts),
        )
        command = [
            sys.executable,
            "-m",
            "django",
            "execute_task",
            job.execution.id,
            "--backend",
            job.backend,
        ]
        # A new session: Ctrl-C in the terminal reaches the worker, not its jobs.
        process = subprocess.Popen(command, env=env, start_new_session=True)
        self.running.append(JobProcess(job=job, process=process))

    def collect(self) -> list[tuple[Job, Done]]:
        finished = []
        for item in list(self.running):
            code = item.process.poll()
            if code is not None:
                self.running.remove(item)
                finished.append(
                    (item.job, Done(execution_id=item.job.execution.id, outcome=f"exit {code}"))
                )
        return finished

    def sigterm(self, execution_id: str) -> bool:
        """Stop one attempt now (forceful cancel), as Cloud Run's cancel_execution does."""
        for item in self.running:
            if item.job.execution.id == execution_id and not item.sigtermed:
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
