"""The warm worker processes of ``run_tasks`` (``cloud_tasks`` mode).

Processes start when there is work, not with the worker: :meth:`WarmPool.want` asks
for as many as there are executions to run (at most ``size``), and they stay warm
until the worker stops. A ``--burst`` run on an empty queue starts none, so its cost
is the interpreter, ``django.setup()`` and one query, not ``size`` more interpreters
that the machine's cores would have to start at the same time.

Each process (:mod:`.child`) runs one job at a time. A job may be handed to a process
that is still starting; if the process exits before it started, the job waits for the
next one, started after a backoff (:class:`.startup.StartFailures`). After too many
failed starts in a row the pool gives up: it starts nothing more and hands its waiting
jobs to the worker (:meth:`WarmPool.take_unstartable`), which fails them.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import subprocess
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait

from .chunks import CLAIMED, Done, Finished, Job, not_started
from .startup import (
    Launched,
    StartFailures,
    StartingJobs,
    child_environment,
    launch,
    python_command,
)

logger = logging.getLogger(__name__)


@dataclass
class WarmChild:
    """One warm worker process and the job it is running, if any."""

    launched: Launched
    conn: Connection
    job: Job | None = None
    claimed: bool = False  #: the job's claim is committed (its executions left READY)
    stopped: bool = False  #: SIGTERMed or killed by us: its exit is no failed start

    @property
    def busy(self) -> bool:
        return self.job is not None

    @property
    def alive(self) -> bool:
        return self.launched.process.poll() is None


@dataclass(kw_only=True)
class WarmPool(StartingJobs):
    """Up to ``size`` warm worker processes, started as work asks for them."""

    size: int
    log_level: int = logging.WARNING
    children: list[WarmChild] = field(default_factory=list)
    failures: StartFailures = field(default_factory=lambda: StartFailures("worker process"))
    wanted: int = 0  #: processes asked for so far (never more than ``size``; never shrinks)
    launched: int = 0  #: processes started since the worker started (replacements included)
    claims: int = 0  #: claims reported (collect() returns when one arrives)

    def want(self, count: int) -> None:
        """Have ``count`` processes (at most ``size``): start the missing ones now."""
        self.wanted = max(self.wanted, min(self.size, count))
        self.start()

    def start(self) -> None:
        """Start processes up to ``wanted``; after a failed start, one at a time, when due."""
        while len(self.children) < self.wanted and not self.closing:
            if self.failures.count:
                if self.failures.exhausted or not self.failures.due():
                    return
                if any(not c.launched.started for c in self.children):
                    return  # one start on trial at a time
            try:
                child = self._launch()
            except OSError as exc:  # e.g. too many processes: a failed start like any other
                self.failures.failed(f"could not be run ({exc!r})", "")
                self._give_up_if_exhausted()
                return
            self.children.append(child)
            self.launched += 1
            if self.waiting:
                self.submit(child, self.waiting.pop(0))

    def _launch(self) -> WarmChild:
        parent_conn, child_conn = multiprocessing.Pipe()
        fd = child_conn.fileno()
        command = python_command("-m", "django_tasks_fs.worker.child", str(fd), str(self.log_level))
        try:
            launched = launch(command, env=child_environment(), pass_fds=(fd,))
        finally:
            child_conn.close()
        return WarmChild(launched=launched, conn=parent_conn)

    def idle(self) -> list[WarmChild]:
        return [c for c in self.children if not c.busy and c.alive]

    def busy(self) -> list[WarmChild]:
        return [c for c in self.children if c.busy]

    def unclaimed(self) -> bool:
        """Was a job handed out whose claim is not committed yet (a poll would read
        its executions again)?"""
        return any(c.busy and not c.claimed for c in self.children)

    def submit(self, child: WarmChild, job: Job) -> None:
        child.job, child.claimed = job, False
        child.conn.send(job)

    def collect(self, timeout: float) -> list[Finished]:
        """Wait up to ``timeout`` for results; replace children that died."""
        busy = self.busy()
        finished: list[Finished] = []
        ready = wait([c.conn for c in busy], timeout=timeout) if busy else []
        for child in self.children:
            if child.launched.check_started():
                self.failures.started()
        for child in busy:
            if child.conn in ready:
                try:
                    done = child.conn.recv()
                except (EOFError, OSError):
                    done = None
                if done == CLAIMED:
                    child.claimed = True
                    self.claims += 1
                    continue  # its report follows
                if done is not None and child.job is not None:
                    finished.append((child.job, done))
                    child.job = None
        alive = []
        for child in self.children:
            code = child.launched.exited()
            if code is None:
                alive.append(child)
                continue
            finished += self._exited(child, code)
            child.launched.close()
            child.conn.close()
        self.children = alive
        self.start()
        return finished

    def _exited(self, child: WarmChild, code: int) -> list[Finished]:
        """A child is gone: a crash mid-job, a failed start, or our own doing."""
        job, child.job = child.job, None
        if child.launched.started:
            if job is None:
                return []
            # Died mid-attempt: its leases expire and the attempts are reclaimed.
            return [(job, [Done(execution_id=i, outcome="crashed") for i in job.ids])]
        if child.stopped or self.closing:
            return [not_started(job)] if job is not None else []
        self.failures.exited(child.launched, code)
        if job is not None:
            self.waiting.append(job)
        self._give_up_if_exhausted()
        return []

    def terminate_busy(self) -> None:
        """SIGTERM the children still running an attempt (they hand it back)."""
        for child in self.busy():
            if child.alive:
                child.stopped = True
                os.kill(child.launched.process.pid, signal.SIGTERM)

    def stop(self, *, kill: bool = False) -> None:
        self.closing = True
        for child in self.children:
            child.stopped = True
            if kill:
                child.launched.process.kill()
            else:
                with contextlib.suppress(BrokenPipeError, OSError):
                    child.conn.send(None)
        for child in self.children:
            try:
                child.launched.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.launched.process.kill()
                child.launched.process.wait()
            child.launched.close()
            child.conn.close()
        self.children = []
