"""Run a Cloud Run job execution as local subprocesses, one per task attempt.

The container image is ignored: the container's ``command`` + ``args`` run in the
emulator's ``cwd`` (``entrypoint`` stands in for the image's ENTRYPOINT when the
container has no command). A failing task is retried up to ``max_retries`` times; a
task that outlives its timeout, or whose execution is cancelled, gets SIGTERM and then,
after a grace period, SIGKILL (to its whole process group).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT_KILL_GRACE = 10.0  #: seconds between SIGTERM and SIGKILL, as Cloud Run
POLL = 0.05


@dataclass(frozen=True, slots=True, kw_only=True)
class LaunchSpec:
    """Everything needed to run one execution."""

    job_id: str
    execution_id: str
    argv: tuple[str, ...]
    env: dict[str, str]  #: container env, after overrides
    task_count: int
    parallelism: int  #: 0 = all tasks at once
    max_retries: int
    timeout: float  #: seconds per task attempt
    log_path: Path


@dataclass(slots=True)
class Progress:
    """Counts reported after every change."""

    running: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    retried: int = 0
    finished: bool = False


@dataclass(slots=True)
class ExecutionHandle:
    """A running execution: cancel it, or wait for it."""

    cancelled: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def cancel(self) -> None:
        self.cancelled.set()

    def join(self, timeout: float | None = None) -> None:
        if self.thread is not None:
            self.thread.join(timeout)


class ProcessExecutor:
    """Launch executions; each gets a thread that runs its tasks."""

    def __init__(
        self,
        *,
        cwd: Path,
        env: dict[str, str],
        entrypoint: Sequence[str] = (),
        kill_grace: float = DEFAULT_KILL_GRACE,
    ) -> None:
        self.cwd = cwd
        self.env = env  #: added to os.environ for every process
        self.entrypoint = tuple(entrypoint)
        self.kill_grace = kill_grace

    def launch(self, spec: LaunchSpec, report: Callable[[Progress], None]) -> ExecutionHandle:
        """Start running ``spec``; ``report`` gets a copy of the counts after each change."""
        handle = ExecutionHandle()
        run = _ExecutionRun(self, spec, handle, report)
        handle.thread = threading.Thread(
            target=run.run, name=f"emulator-run-{spec.execution_id}", daemon=True
        )
        handle.thread.start()
        return handle


class _ExecutionRun:
    def __init__(
        self,
        executor: ProcessExecutor,
        spec: LaunchSpec,
        handle: ExecutionHandle,
        report: Callable[[Progress], None],
    ) -> None:
        self.executor = executor
        self.spec = spec
        self.handle = handle
        self._report = report
        self.progress = Progress()
        self.lock = threading.Lock()

    def update(self, change: Callable[[Progress], None]) -> None:
        with self.lock:
            change(self.progress)
            self._report(replace(self.progress))

    def run(self) -> None:
        spec = self.spec
        # At most ``parallelism`` tasks at once, each on a daemon thread.
        slots = threading.Semaphore(max(spec.parallelism or spec.task_count, 1))
        threads = []
        for index in range(spec.task_count):
            slots.acquire()
            thread = threading.Thread(
                target=self.run_task,
                args=(index, slots),
                name=f"emulator-run-{spec.execution_id}-{index}",
                daemon=True,
            )
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()
        self.update(lambda p: setattr(p, "finished", True))

    def run_task(self, index: int, slots: threading.Semaphore) -> None:
        try:
            self.run_attempts(index)
        except Exception:
            logger.exception("task crashed execution=%s task=%s", self.spec.execution_id, index)
            self.update(_failed)
        finally:
            slots.release()

    def run_attempts(self, index: int) -> None:
        spec = self.spec
        for attempt in range(spec.max_retries + 1):
            if self.handle.cancelled.is_set():
                break
            if attempt:
                self.update(_retried)
            self.update(_started)
            code = self.run_attempt(index, attempt)
            self.update(_stopped)
            if self.handle.cancelled.is_set():
                break  # cancelled, whatever the exit code
            if code == 0:
                self.update(_succeeded)
                return
        else:
            self.update(_failed)
            return
        self.update(_cancelled)

    def run_attempt(self, index: int, attempt: int) -> int:
        """Run one attempt; return its exit code (-1 when it could not start)."""
        spec = self.spec
        env = {
            **os.environ,
            **self.executor.env,
            **spec.env,
            "CLOUD_RUN_JOB": spec.job_id,
            "CLOUD_RUN_EXECUTION": spec.execution_id,
            "CLOUD_RUN_TASK_INDEX": str(index),
            "CLOUD_RUN_TASK_COUNT": str(spec.task_count),
            "CLOUD_RUN_TASK_ATTEMPT": str(attempt),
        }
        with spec.log_path.open("ab") as log:
            log.write(f"--- task {index} attempt {attempt}: {list(spec.argv)}\n".encode())
            log.flush()
            try:
                process = subprocess.Popen(
                    spec.argv,
                    cwd=self.executor.cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                log.write(f"--- could not start: {exc}\n".encode())
                return -1
            code = self.wait(process)
            log.write(f"--- task {index} attempt {attempt} exited with {code}\n".encode())
        logger.info(
            "job task ended execution=%s task=%s attempt=%s code=%s",
            spec.execution_id,
            index,
            attempt,
            code,
        )
        return code

    def wait(self, process: subprocess.Popen[bytes]) -> int:
        """Wait for exit; on timeout or cancel, SIGTERM then SIGKILL after the grace."""
        deadline = time.monotonic() + self.spec.timeout
        while True:
            try:
                return process.wait(timeout=POLL)
            except subprocess.TimeoutExpired:
                pass
            if self.handle.cancelled.is_set() or time.monotonic() >= deadline:
                break
        _signal(process, signal.SIGTERM)
        try:
            return process.wait(timeout=self.executor.kill_grace)
        except subprocess.TimeoutExpired:
            _signal(process, signal.SIGKILL)
            return process.wait()


def _signal(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def _started(p: Progress) -> None:
    p.running += 1


def _stopped(p: Progress) -> None:
    p.running -= 1


def _retried(p: Progress) -> None:
    p.retried += 1


def _succeeded(p: Progress) -> None:
    p.succeeded += 1


def _failed(p: Progress) -> None:
    p.failed += 1


def _cancelled(p: Progress) -> None:
    p.cancelled += 1
