"""Cloud Run Jobs crash: kill -9 of ``execute_task`` containers at chosen points.

Executions go to the Cloud Run Jobs backend; the local Google Cloud emulator runs each
job task as an ``execute_task`` subprocess (``max_retries`` 1, as a small job would).
Each execution gets a crash point for its first attempt:

* ``before-claim``: killed from outside as soon as its process appears (Django is
  still starting; nothing claimed);
* ``random``: killed from outside at a random moment (start-up, body, result write);
* ``mid-task``: the body kills its own process half-way;
* ``after-return``: the body's work is done, the process dies before the result write;
* ``none``.

The job's own retry meets the dead attempt's live lease and gives up, so the sweeper
(``sweep()``, as the ``sweep/`` endpoint would run it every minute) must hand those
executions to Cloud Run again. Counts lost, overlapping bodies, stuck, re-dispatches.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import tempfile
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from .common import REPO_ROOT, final_statuses, setup
from .spans import figures, read_bodies

POINTS = ("none", "before-claim", "random", "mid-task", "after-return")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--in-flight", type=int, default=12, help="run-jobs-crash: job executions at once"
    )


def _processes(execution_id: str) -> list[int]:
    """Pids of ``execute_task <execution_id>`` processes (their argv names the id)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"execute_task" in argv and execution_id.encode() in argv:
            found.append(int(entry.name))
    return found


class Killer(threading.Thread):
    """Kill the first process of each planned execution: at once, or after a delay."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.plans: dict[str, float] = {}  #: execution id -> delay after first sighting
        self.seen: dict[str, float] = {}
        self.killed_at: dict[int, float] = {}  #: process group (= pid here) -> when
        self.lock = threading.Lock()
        self.stopped = threading.Event()

    def plan(self, execution_id: str, delay: float) -> None:
        with self.lock:
            self.plans[execution_id] = delay

    def run(self) -> None:
        while not self.stopped.wait(0.02):
            with self.lock:
                plans = list(self.plans.items())
            for execution_id, delay in plans:
                pids = _processes(execution_id)
                if not pids:
                    continue
                first = self.seen.setdefault(execution_id, time.monotonic())
                if time.monotonic() - first < delay:
                    continue
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        continue
                    self.killed_at[pid] = time.monotonic()
                with self.lock:
                    del self.plans[execution_id]


def run(args: argparse.Namespace) -> dict[str, Any]:
    from django_tasks_fs.emulators.gcloud.server import GoogleCloudEmulator

    executions = args.executions
    project = f"chaos-jobs-{os.getpid()}"
    log = Path(tempfile.mkdtemp()) / "bodies.txt"
    with GoogleCloudEmulator(cwd=REPO_ROOT, kill_grace=2) as gcloud:
        setup(project, certs_url=gcloud.certs_url, gcloud_host=gcloud.grpc_host)
        from django.tasks import task_backends

        from django_tasks_fs.dispatching import sweep
        from tests import tasks
        from tests.factories import JOB, create_job

        create_job(gcloud, project, max_retries=1)
        backend: Any = task_backends["cloudjobs"]
        killer = Killer()
        killer.start()
        points: Counter[str] = Counter()
        redispatched = 0
        ids: list[str] = []
        started = time.monotonic()
        deadline = started + 60 + executions * 3

        def unfinished() -> list[str]:
            return [i for i in ids if not backend.executions.get(i).is_finished]

        next_sweep = 0.0
        while time.monotonic() < deadline:
            open_ids = unfinished()
            while len(ids) < executions and len(open_ids) < args.in_flight:
                point = random.choice(POINTS)
                points[point] += 1
                job = tasks.crash_at.using(backend="cloudjobs", queue_name=JOB)
                # The killer must know the id before the process starts: plan, then send.
                execution = backend.build_execution(job, [str(log), f"t{len(ids)}", 0.3, point], {})
                if point in ("before-claim", "random"):
                    killer.plan(
                        execution.id, 0.0 if point == "before-claim" else random.uniform(0.1, 2.5)
                    )
                backend.dispatch(backend.executions.create(execution))
                ids.append(execution.id)
                open_ids.append(execution.id)
            if len(ids) == executions and not open_ids:
                break
            if time.monotonic() >= next_sweep:
                redispatched += sweep(backend, grace=timedelta(0)).redispatched
                next_sweep = time.monotonic() + 1.0
            time.sleep(0.2)
        killer.stopped.set()
        elapsed = time.monotonic() - started
        final = final_statuses(backend.executions, ids)
        spans = figures(read_bodies(log, killed_at=killer.killed_at), executions)
    return {
        "scenario": "run-jobs-crash",
        "executions": executions,
        "crash_points": dict(points),
        "kill_9_from_outside": len(killer.killed_at),
        "redispatched_by_the_sweeper": redispatched,
        **spans,
        "lost": executions - final.get("SUCCESSFUL", 0),
        "stuck_running_or_ready": final.get("RUNNING", 0) + final.get("READY", 0),
        "final": dict(final),
        "seconds": round(elapsed, 1),
    }
