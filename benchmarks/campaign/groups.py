"""Task groups under worker crashes and duplicate deliveries.

``--groups`` groups share ``--executions`` members (``record_span`` bodies); every
other group also has one member that fails for good. Each group has an ``on_complete``
and an ``on_success`` callback that log one line per run. The ``run_tasks`` worker is
killed with SIGKILL ``--kills`` times at random moments and restarted, while this
process delivers random members again (``--duplicates`` extra attempts per member, as
a platform's duplicate deliveries would: a claim race while it runs, a refused claim
once it finished). Then the worker is left to finish every group.

Counts members lost, bodies run twice at once, callbacks enqueued more than once or
never, and ``on_success`` enqueued for a group with a failed member.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from .common import REPO_ROOT, final_statuses, setup
from .spans import figures, read_bodies


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--groups", type=int, default=10, help="groups: how many groups")
    parser.add_argument(
        "--duplicates", type=int, default=2, help="groups: extra deliveries per member"
    )
    parser.add_argument(
        "--sweep-seconds",
        type=float,
        default=0.0,
        help="groups: also sweep groups from here this often (0: only run_tasks' own sweep)",
    )


def _deliver_again(backend: Any, ids: list[str], stop: threading.Event, done: list[int]) -> None:
    """Attempt random members from this process once the worker has taken them (a
    duplicate delivery each: refused while its lease lives, a takeover once a killed
    worker's lease expired, refused once finished)."""
    from django.tasks import TaskResultStatus

    from django_tasks_fs.execution.attempt import Attempt

    pending = list(ids)
    while pending and not stop.is_set():
        execution_id = pending.pop(0)
        if backend.executions.get(execution_id).status == TaskResultStatus.READY:
            pending.append(execution_id)  # not delivered yet: its duplicate comes later
            time.sleep(0.01)
            continue
        Attempt(backend, execution_id, worker_id=f"duplicate-{done[0]}").run()
        done[0] += 1


def _ran_in(log: Path, process_group: int) -> bool:
    """Has a body started in this worker's process group? (see tests.tasks.record_span)"""
    if not log.exists():
        return False
    return any(
        line.startswith("start") and line.split()[-1] == str(process_group)
        for line in log.read_text().splitlines()
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    executions, kills, group_count = args.executions, args.kills, args.groups
    project = f"chaos-groups-{os.getpid()}"
    setup(project)
    from django.tasks import task_backends

    from django_tasks_fs import enqueue_group
    from django_tasks_fs.store.groups import GroupStatus
    from tests import tasks

    tmp = Path(tempfile.mkdtemp())
    log, callbacks_log = tmp / "bodies.txt", tmp / "callbacks.txt"
    backend: Any = task_backends["default"]
    per_group = max(1, executions // group_count)
    groups, members, failing = [], [], 0
    for g in range(group_count):
        calls: list[Any] = [
            (tasks.record_span, (str(log), f"g{g}m{m}", 0.05), {}) for m in range(per_group)
        ]
        if g % 2:
            calls.append((tasks.permanent, (), {}))
            failing += 1
        group = enqueue_group(
            calls,
            on_complete=(tasks.record_group, [str(callbacks_log), "complete"], {}),
            on_success=(tasks.record_group, [str(callbacks_log), "success"], {}),
        )
        groups.append(group)
        members += [m.id for m in group.members if m.task.name == "record_span"]
    duplicates = [m.id for g in groups for m in g.members] * args.duplicates
    random.shuffle(duplicates)
    stop, delivered = threading.Event(), [0]
    again = threading.Thread(target=_deliver_again, args=(backend, duplicates, stop, delivered))
    env = {**os.environ, "TEST_FIRESTORE_PROJECT": project, "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "django", "run_tasks", "--backend", "default", "-v", "0"]
    started = time.monotonic()
    done_kills = 0
    killed_at: dict[int, float] = {}
    again.start()

    def all_done() -> bool:
        for group in groups:
            stored = backend.groups.get(group.id)
            if stored.status != GroupStatus.COMPLETE:
                return False
            if not all(backend.executions.get(i).is_finished for i in stored.callback_ids):
                return False
        return True

    def sweep_now() -> None:
        from django_tasks_fs.group_completion import sweep_groups

        while not stop.wait(args.sweep_seconds):
            sweep_groups(backend, grace=timedelta(0))

    if args.sweep_seconds:
        threading.Thread(target=sweep_now, daemon=True).start()
    while True:
        worker = subprocess.Popen(command, env=env, cwd=REPO_ROOT, start_new_session=True)
        if done_kills < kills:
            # Once this worker runs bodies (a kill while it starts would hit no body).
            until = time.monotonic() + 30
            while time.monotonic() < until and not _ran_in(log, worker.pid):
                time.sleep(0.05)
            time.sleep(random.uniform(0.1, 1.0))
            os.killpg(worker.pid, signal.SIGKILL)
            killed_at[worker.pid] = time.monotonic()
            worker.wait()
            done_kills += 1
            continue
        deadline = time.monotonic() + 600
        while not all_done() and time.monotonic() < deadline:
            time.sleep(0.5)
        stop.set()
        again.join()
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=120)
        break
    elapsed = time.monotonic() - started

    final = final_statuses(backend.executions, members)
    spans = figures(read_bodies(log, killed_at=killed_at), len(members))
    runs = (
        Counter(tuple(line.split()[:2]) for line in callbacks_log.read_text().splitlines())
        if callbacks_log.exists()
        else Counter()
    )
    stored = [backend.groups.get(g.id) for g in groups]
    # How long after its last member finished each group completed (a lost check waits
    # for a sweep).
    lags = [
        (g.completed_at - max(m.finished_at for m in backend.groups.members(g.id))).total_seconds()
        for g in stored
        if g.completed_at is not None
    ]
    expected = {(kind, g.id) for g in stored for kind in ("complete", "success")}
    expected -= {("success", g.id) for g in stored if g.failed}
    # Every execution in the store is a member or a callback: any beyond the expected
    # callbacks would be a second one.
    extra_callbacks = backend.executions.count() - len(members) - failing - len(expected)
    return {
        "scenario": "groups",
        "groups": group_count,
        "executions": len(members),
        "failing_members": failing,
        "kill_9": done_kills,
        "duplicate_deliveries": delivered[0],
        **spans,
        "lost": len(members) - final.get("SUCCESSFUL", 0),
        "stuck_running_or_ready": final.get("RUNNING", 0) + final.get("READY", 0),
        "groups_completed": sum(1 for g in stored if g.status == GroupStatus.COMPLETE),
        "callbacks_expected": len(expected),
        "callbacks_missing": len(expected - set(runs)),
        "callbacks_enqueued_twice": max(0, extra_callbacks),
        "callback_reruns": sum(c - 1 for c in runs.values() if c > 1),  # killed mid-body
        "on_success_after_a_failure": sum(
            1 for g in stored if g.failed and ("success", g.id) in runs
        ),
        "completion_lag_max_seconds": round(max(lags, default=0.0), 2),
        "completed_by_a_sweep": sum(1 for lag in lags if lag > 5),
        "seconds": round(elapsed, 1),
    }
