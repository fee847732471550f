"""Starting the child processes of ``run_tasks``, and what happens when one cannot start.

Both kinds of children — warm worker processes (``python -P -m
django_tasks_fs.worker.child``) and ``cloud_run_jobs`` attempts (``python -P -m django
execute_task <id>``) — are fresh interpreters started with :mod:`subprocess`:

* Not through :mod:`multiprocessing`: its ``spawn`` method re-runs the launching
  script's ``__main__`` in every child, so a script without an ``if __name__ ==
  "__main__":`` guard (``call_command("run_tasks")`` at its top level) started the
  worker again inside each child; ``fork`` copies gRPC channels, which must not cross
  a fork. A child's entry point is a module of ours instead.
* A child gets what it needs explicitly, never from its working directory: the
  parent's import path as ``PYTHONPATH`` (``manage.py`` puts its own folder on
  ``sys.path``; ``python -m`` in another folder would not find the project), the
  parent's settings module as ``DJANGO_SETTINGS_MODULE``, and ``-P`` so that the
  working directory is not put in front of that path. Once started, the child puts
  the worker's own ``PYTHONPATH`` back in its environment: processes that task code
  starts (perhaps another Python) see the worker's environment, not that import path.

A child has *started* once Django is set up in it: it calls :func:`report_started`,
which writes to a pipe the parent passed it. Until then its stderr goes to a temporary
file, so a child that exits before starting is reported with its own error output;
on starting, the child copies that output to the worker's stderr and writes there
directly from then on.

A failed start is retried after an exponential, bounded backoff, one child at a time;
:data:`MAX_FAILED_STARTS` failures in a row make the worker give up (see
:class:`StartFailures`).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .chunks import Finished, Job, not_started

logger = logging.getLogger(__name__)

#: Failed starts in a row (no child started in between) after which ``run_tasks`` gives
#: up: the executions handed to those children are FAILED and the worker exits.
MAX_FAILED_STARTS = 5
#: Pause after a failed start, in seconds; doubled after each further one, up to the max.
START_BACKOFF = 0.5
START_BACKOFF_MAX = 30.0
#: How much of a child's output is logged and recorded when it fails to start (the end).
OUTPUT_TAIL = 4000

#: Environment variables naming the descriptors of :func:`report_started`.
STARTED_FD_ENV = "DJANGO_TASKS_FS_STARTED_FD"
STDERR_FD_ENV = "DJANGO_TASKS_FS_STDERR_FD"
#: The worker's own PYTHONPATH (JSON: null when unset), restored by :func:`report_started`.
PYTHONPATH_ENV = "DJANGO_TASKS_FS_WORKER_PYTHONPATH"


def settings_module() -> str:
    """The settings module children must load; ImproperlyConfigured if there is none."""
    module = settings.SETTINGS_MODULE if settings.configured else None
    if not module:
        raise ImproperlyConfigured(
            "run_tasks starts its worker processes with DJANGO_SETTINGS_MODULE, but these "
            "settings come from settings.configure(). Put them in a module and set "
            "DJANGO_SETTINGS_MODULE (or pass --settings)."
        )
    return module


def import_path() -> list[str]:
    """This process's ``sys.path`` as absolute folders, in order, without duplicates."""
    entries: list[str] = []
    for entry in sys.path:
        if isinstance(entry, str):
            absolute = os.path.abspath(entry or os.curdir)
            if absolute not in entries:
                entries.append(absolute)
    return entries


def child_environment(**extra: str) -> dict[str, str]:
    """The environment of a child: this one, plus the import path and settings module."""
    env = dict(os.environ)
    env[PYTHONPATH_ENV] = json.dumps(os.environ.get("PYTHONPATH"))
    env["PYTHONPATH"] = os.pathsep.join(import_path())
    env["DJANGO_SETTINGS_MODULE"] = settings_module()
    env.update(extra)
    return env


def python_command(*args: str) -> list[str]:
    """``python -P ARGS`` with this interpreter (``-P``: no working directory on sys.path)."""
    return [sys.executable, "-P", *args]


@dataclass
class Launched:
    """A child process and what it said about its start."""

    process: subprocess.Popen[bytes]
    started_pipe: int
    output: IO[bytes]  #: the child's stderr until it started
    started: bool = False
    pipe_closed: bool = False

    def check_started(self) -> bool:
        """Has the child started just now? (True once; ``started`` stays True after.)"""
        if self.started or self.pipe_closed:
            return False
        try:
            data = os.read(self.started_pipe, 16)
        except BlockingIOError:
            return False
        if not data:  # EOF: the child is gone without a word
            self._close_pipe()
            return False
        self.started = True
        self._close_pipe()
        self.output.close()
        return True

    def exited(self) -> int | None:
        """The exit status once the child has exited (after a last look at its start)."""
        code = self.process.poll()
        if code is not None:
            self.check_started()
        return code

    def output_tail(self) -> str:
        """The end of what the child wrote before starting (empty once it started)."""
        if self.started or self.output.closed:
            return ""
        self.output.seek(0, os.SEEK_END)
        size = self.output.tell()
        self.output.seek(max(0, size - OUTPUT_TAIL))
        return self.output.read().decode(errors="replace").strip()

    def close(self) -> None:
        self._close_pipe()
        if not self.output.closed:
            self.output.close()

    def _close_pipe(self) -> None:
        if not self.pipe_closed:
            self.pipe_closed = True
            os.close(self.started_pipe)


def launch(
    command: Sequence[str],
    *,
    env: dict[str, str],
    pass_fds: Sequence[int] = (),
    new_session: bool = False,
) -> Launched:
    """Start ``command`` as a child that reports its start (see the module docstring)."""
    started_r, started_w = os.pipe()
    os.set_blocking(started_r, False)
    stderr_copy = os.dup(2)  # the worker's own stderr, for the child once it started
    output = tempfile.TemporaryFile()  # noqa: SIM115  (Launched closes it)
    env = {**env, STARTED_FD_ENV: str(started_w), STDERR_FD_ENV: str(stderr_copy)}
    try:
        process = subprocess.Popen(
            list(command),
            env=env,
            stderr=output,
            pass_fds=(*pass_fds, started_w, stderr_copy),
            start_new_session=new_session,
        )
    except BaseException:
        os.close(started_r)
        output.close()
        raise
    finally:
        os.close(started_w)
        os.close(stderr_copy)
    return Launched(process=process, started_pipe=started_r, output=output)


def report_started() -> None:
    """In a child of :func:`launch`: say it started; no-op in any other process."""
    started = os.environ.pop(STARTED_FD_ENV, None)
    stderr = os.environ.pop(STDERR_FD_ENV, None)
    pythonpath = os.environ.pop(PYTHONPATH_ENV, None)
    if pythonpath is not None:
        value = json.loads(pythonpath)
        if value is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = value
    if stderr is not None:
        real = int(stderr)
        sys.stderr.flush()
        size = os.fstat(2).st_size
        if size:  # what the start printed (warnings...) belongs in the worker's output
            os.write(real, os.pread(2, size, 0))
        os.dup2(real, 2)
        os.close(real)
    if started is not None:
        fd = int(started)
        os.write(fd, b"1")
        os.close(fd)


def start_delay(failed_starts: int) -> float:
    """Seconds to wait before the next start, after ``failed_starts`` in a row."""
    return min(START_BACKOFF * 2.0 ** max(failed_starts - 1, 0), START_BACKOFF_MAX)


@dataclass
class StartFailures:
    """Failed starts in a row of one kind of child, and when the next may be tried."""

    kind: str  #: what is started, for the logs ("worker process", "execute_task process")
    count: int = 0
    last_error: str = ""
    _next_start: float = field(default=0.0, repr=False)

    @property
    def exhausted(self) -> bool:
        """Give up: MAX_FAILED_STARTS in a row."""
        return self.count >= MAX_FAILED_STARTS

    def due(self) -> bool:
        """May the next start be tried now?"""
        return time.monotonic() >= self._next_start

    def started(self) -> None:
        """A child started: the backoff is over."""
        if self.count:
            logger.warning("%s started after %d failed start(s)", self.kind, self.count)
        self.count = 0
        self.last_error = ""
        self._next_start = 0.0

    def exited(self, launched: Launched, code: int) -> None:
        """A child exited before it started."""
        self.failed(f"exited with status {code} before it started", launched.output_tail())

    def failed(self, what: str, output: str) -> None:
        """A child did not start (``what`` happened): log it with its output, back off."""
        self.count += 1
        output = output or "(no output)"
        self.last_error = f"the {self.kind} {what}; its output ended with:\n{output}"
        delay = start_delay(self.count)
        self._next_start = time.monotonic() + delay
        logger.error(
            "%s did not start failed_starts=%d/%d retry_in=%s: it %s; output:\n%s",
            self.kind,
            self.count,
            MAX_FAILED_STARTS,
            "never (giving up)" if self.exhausted else f"{delay:.1f}s",
            what,
            output,
        )

    def give_up_message(self) -> str:
        """Why the executions are failed (recorded in them) and the worker stops."""
        return (
            f"{MAX_FAILED_STARTS} failed starts in a row: {self.last_error}\n"
            f"Each {self.kind} loads the settings module {settings_module()!r} with "
            f"run_tasks' sys.path as PYTHONPATH: fix what its output shows (run "
            f"'python -m django check' the same way to see it), then start run_tasks again."
        )


@dataclass(kw_only=True)
class StartingJobs:
    """What both kinds of children share: jobs waiting for a process that did not start,
    jobs given up on after too many failed starts, and shutdown."""

    failures: StartFailures
    waiting: list[Job] = field(default_factory=list)  #: their process did not start
    unstartable: list[Job] = field(default_factory=list)  #: given up on
    closing: bool = False

    def _give_up_if_exhausted(self) -> None:
        if self.failures.exhausted:
            self.unstartable += self.waiting
            self.waiting = []

    def take_unstartable(self) -> list[Job]:
        """The jobs given up on (their processes could not start), once."""
        jobs, self.unstartable = self.unstartable, []
        return jobs

    def close(self) -> list[Finished]:
        """Start nothing more (shutdown); the waiting jobs come back unrun."""
        self.closing = True
        jobs, self.waiting = self.waiting, []
        return [not_started(job) for job in jobs]
