"""Worker crash: kill -9 of the whole ``run_tasks`` process group at random moments.

The worker (and its warm processes) is killed ``--kills`` times, restarted each time,
then left to finish. Every body logs its start and end; two bodies of one execution
whose intervals overlap (a kill ends a body that never logged its end) would mean two
owners at once. Re-running a body after a crash is expected (at-least-once).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import REPO_ROOT, final_statuses, setup
from .spans import figures, read_bodies


def run(args: argparse.Namespace) -> dict[str, Any]:
    executions, kills = args.executions, args.kills
    project = f"chaos-crash-{os.getpid()}"
    setup(project)
    from django.tasks import task_backends

    from tests import tasks

    log = Path(tempfile.mkdtemp()) / "bodies.txt"
    backend: Any = task_backends["default"]
    ids = [tasks.record_span.enqueue(str(log), f"t{n}", 0.05).id for n in range(executions)]
    env = {**os.environ, "TEST_FIRESTORE_PROJECT": project, "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "django", "run_tasks", "--backend", "default", "-v", "0"]
    started = time.monotonic()
    done_kills = 0
    killed_at: dict[int, float] = {}  # process group -> when it was killed

    def finished() -> int:
        return sum(1 for e in backend.executions.page(limit=executions + 10).items if e.is_finished)

    while True:
        worker = subprocess.Popen(command, env=env, cwd=REPO_ROOT, start_new_session=True)
        if done_kills < kills:
            time.sleep(random.uniform(0.5, 2.0))
            os.killpg(worker.pid, signal.SIGKILL)
            killed_at[worker.pid] = time.monotonic()
            worker.wait()
            done_kills += 1
            continue
        deadline = time.monotonic() + 600
        while finished() < executions and time.monotonic() < deadline:
            time.sleep(0.5)
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=120)
        break
    elapsed = time.monotonic() - started
    final = final_statuses(backend.executions, ids)
    spans = figures(read_bodies(log, killed_at=killed_at), executions)
    return {
        "scenario": "worker-crash",
        "executions": executions,
        "kill_9": done_kills,
        **spans,
        "lost": executions - final.get("SUCCESSFUL", 0),
        "stuck_running_or_ready": final.get("RUNNING", 0) + final.get("READY", 0),
        "seconds": round(elapsed, 1),
    }
