"""One ``execute_task`` process per attempt (``cloud_run_jobs`` mode), as Cloud Run Jobs runs it.

Each process is ``python -P -m django execute_task <id> --backend <alias>`` with the
Cloud Run environment (``CLOUD_RUN_EXECUTION``, ``CLOUD_RUN_TASK_ATTEMPT``, ...),
started through :func:`.startup.launch`. A job of several executions runs as a Cloud
Run fan-out does: one "job execution" of that many tasks, each process running
``execute_task --fan-out`` and taking its member by ``CLOUD_RUN_TASK_INDEX``. A process
that exits before it started leaves its execution waiting for the next start (alone),
after a backoff; meanwhile no new job is taken.
After too many failed starts in a row the runner gives up on its waiting jobs
(:meth:`JobRunner.take_unstartable`).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field

from .chunks import Done, Finished, Job, not_started
from .startup import (
    Launched,
    StartFailures,
    StartingJobs,
    child_environment,
    launch,
    python_command,
)


@dataclass
class JobProcess:
    """One ``execute_task`` process."""

    job: Job
    launched: Launched
    sigtermed: bool = False


@dataclass(kw_only=True)
class JobRunner(StartingJobs):
    """Start one process per attempt, at most ``size`` at a time."""

    size: int
    running: list[JobProcess] = field(default_factory=list)
    failures: StartFailures = field(default_factory=lambda: StartFailures("execute_task process"))

    def free(self) -> int:
        """How many new jobs may start now (none while starts fail or on shutdown)."""
        if self.closing or self.failures.count:
            return 0
        return self.size - len(self.running)

    def submit(self, job: Job) -> None:
        """Start one process per execution of ``job`` (a fan-out when more than one)."""
        first = job.executions[0]
        run = f"local-{first.id}-{first.attempts}"
        if len(job.executions) == 1:
            self._start(job, run, "0", {}, first.id)
            return
        # Only in cloud_run_jobs mode: its modules are not part of every worker's start-up.
        from ..backends.fan_out import member_env

        fan_out = member_env(job.ids)
        for index, execution in enumerate(job.executions):
            member = Job(backend=job.backend, executions=(execution,))
            self._start(member, run, str(index), fan_out, "--fan-out", count=len(job.executions))

    def _start(
        self, job: Job, run: str, index: str, env: dict[str, str], *args: str, count: int = 1
    ) -> None:
        """Start the process of ``job``'s one execution: task ``index`` of ``run``."""
        (execution,) = job.executions
        env = child_environment(
            **env,
            CLOUD_RUN_JOB=job.backend,
            CLOUD_RUN_EXECUTION=run,
            CLOUD_RUN_TASK_INDEX=index,
            CLOUD_RUN_TASK_COUNT=str(count),
            CLOUD_RUN_TASK_ATTEMPT=str(execution.attempts),
        )
        command = python_command("-m", "django", "execute_task", *args, "--backend", job.backend)
        try:
            # A new session: Ctrl-C in the terminal reaches the worker, not its jobs.
            launched = launch(command, env=env, new_session=True)
        except OSError as exc:  # e.g. too many processes: a failed start like any other
            self.failures.failed(f"could not be run ({exc!r})", "")
            self.waiting.append(job)
            self._give_up_if_exhausted()
            return
        self.running.append(JobProcess(job=job, launched=launched))

    def collect(self) -> list[Finished]:
        finished: list[Finished] = []
        for item in list(self.running):
            if item.launched.check_started():
                self.failures.started()
            code = item.launched.exited()
            if code is None:
                continue
            self.running.remove(item)
            if item.launched.started or item.sigtermed:
                done = [Done(execution_id=i, outcome=f"exit {code}") for i in item.job.ids]
                finished.append((item.job, done))
            elif self.closing:
                finished.append(not_started(item.job))
            else:
                self.failures.exited(item.launched, code)
                self.waiting.append(item.job)
            item.launched.close()
        self._give_up_if_exhausted()
        self._retry_waiting()
        return finished

    def _retry_waiting(self) -> None:
        """Start the waiting jobs: all at once when starts work again, else one when due."""
        while self.waiting and not self.closing and len(self.running) < self.size:
            if self.failures.exhausted:
                return
            if self.failures.count:
                trial = any(not item.launched.started for item in self.running)
                if trial or not self.failures.due():
                    return
            self.submit(self.waiting.pop(0))

    def sigterm(self, execution_id: str) -> bool:
        """Stop one attempt now (forceful cancel), as Cloud Run's cancel_execution does."""
        for item in self.running:
            if execution_id in item.job.ids and not item.sigtermed:
                item.sigtermed = True
                item.launched.process.send_signal(signal.SIGTERM)
                return True
        return False

    def terminate_all(self) -> None:
        for item in self.running:
            if item.launched.process.poll() is None:
                item.sigtermed = True
                item.launched.process.send_signal(signal.SIGTERM)

    def kill_all(self) -> None:
        for item in self.running:
            if item.launched.process.poll() is None:
                item.launched.process.kill()
