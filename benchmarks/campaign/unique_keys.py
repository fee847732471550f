"""Unique keys: many enqueuers racing on a few keys while the worker is killed (-9).

``--concurrency`` threads call ``enqueue()`` of a task with a unique key, each call on
one of ``--keys`` keys at random (a call every 0.05 to 0.15 s per thread), while a
``run_tasks`` worker runs the executions (bodies of ``--task-seconds``) and is killed
``--kills`` times and restarted; the calls stop once ``--executions`` executions were
created (a key is free again only when its execution finished) and the kills are done. Some keys
start with a key document left behind (its execution missing, as after a crash or a
purge): they must be taken over. Checked: every call got an execution that finished;
no execution was written that no call got (``orphans``); no two executions of one key
ever ran at once (``concurrent_holders``, counted into ``duplicated_bodies``).
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
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from .common import REPO_ROOT, final_statuses, setup
from .spans import figures, overlapping, read_bodies

TASK = "tests.tasks.unique_span"


def emulator_alive(args: argparse.Namespace) -> None:
    """Stop waiting for a run that cannot end: the emulator is gone."""
    process = args.firestore.process
    if process is not None and process.poll() is not None:
        raise RuntimeError(f"The Firestore emulator exited ({process.returncode}).")


def starts(log: Path) -> int:
    """Bodies started so far."""
    return log.read_text().count("start ") if log.exists() else 0


def first_attempt_started(backend: Any, log: Path, seen: int) -> bool:
    """Has a body started, after the first ``seen``, on its execution's first attempt?"""
    text = log.read_text() if log.exists() else ""
    started = [line.split()[1] for line in text.splitlines() if line.startswith("start ")]
    return any(backend.executions.get(t.split("/")[1]).attempts == 1 for t in started[seen:])


def wait_for(predicate: Callable[[], bool], *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keys", type=int, default=10, help="unique-keys: distinct keys")
    parser.add_argument(
        "--stale-keys", type=int, default=3, help="unique-keys: keys left behind by a crash"
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    wanted, threads, kills = args.executions, args.concurrency, args.kills
    keys = [f"k{n}" for n in range(args.keys)]
    project = f"chaos-unique-{os.getpid()}"
    setup(project)
    from django.tasks import task_backends

    from django_tasks_fs.exceptions import StoreUnavailable
    from django_tasks_fs.store.ops.counting import enable_counting
    from django_tasks_fs.store.unique_keys import unique_key_id
    from tests import tasks

    backend: Any = task_backends["default"]
    stale = keys[: args.stale_keys]
    for key in stale:
        left = backend.build_execution(tasks.unique_span, ("", key, 0), {})
        backend.executions.documents.create(
            backend.executions.settings.unique_keys_collection,
            unique_key_id("default", TASK, key),
            {"key": key, "backend": "default", "task_path": TASK, "execution_id": f"lost-{key}",
             "enqueued_at": left.enqueued_at, "held_until": None, "expires_at": None},
        )  # fmt: skip
    log = Path(tempfile.mkdtemp()) / "bodies.txt"
    counts = enable_counting()
    backend.__dict__.pop("executions", None)  # stores made from now on are counted
    backend.__dict__.pop("unique_keys", None)
    env = {**os.environ, "TEST_FIRESTORE_PROJECT": project, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("DJANGO_TASKS_FS_OP_COUNTS", None)
    command = [sys.executable, "-m", "django", "run_tasks", "--backend", "default", "-v", "0"]
    returned: list[str] = []
    errors: Counter[str] = Counter()
    lock = threading.Lock()
    stop = threading.Event()

    def enqueuer() -> None:
        while not stop.is_set():
            time.sleep(random.uniform(0.05, 0.15))
            key = random.choice(keys)
            try:
                result = tasks.unique_span.enqueue(str(log), key, args.task_seconds)
            except StoreUnavailable:
                errors["unavailable"] += 1
                continue
            except Exception as exc:  # counted: the run fails on any
                errors[type(exc).__name__] += 1
                continue
            with lock:
                returned.append(result.id)

    pool = [threading.Thread(target=enqueuer, daemon=True) for _ in range(threads)]
    started = time.monotonic()
    counts.reset()
    for thread in pool:
        thread.start()
    killed_at: dict[int, float] = {}
    worker = subprocess.Popen(command, env=env, cwd=REPO_ROOT, start_new_session=True)
    try:
        for _ in range(kills):
            # Mid-body: once this worker started a first attempt (its execution RUNNING,
            # holding the key). Only first attempts: three kills of one execution would
            # exhaust its 3 attempts (FAILED, WorkerLost), which is not tested here.
            seen = starts(log)
            wait_for(lambda: first_attempt_started(backend, log, seen), timeout=60)  # noqa: B023
            time.sleep(random.uniform(0, args.task_seconds))
            os.killpg(worker.pid, signal.SIGKILL)
            killed_at[worker.pid] = time.monotonic()
            worker.wait()
            worker = subprocess.Popen(command, env=env, cwd=REPO_ROOT, start_new_session=True)
        deadline = time.monotonic() + 600
        while len(set(returned)) < wanted and time.monotonic() < deadline:
            emulator_alive(args)
            time.sleep(0.1)
        stop.set()
        for thread in pool:
            thread.join()
        calls = len(returned) + sum(errors.values())
        enqueue_ops = counts.as_dict()
        ids = sorted(set(returned))
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if all(backend.executions.get(i).is_finished for i in ids):
                break
            emulator_alive(args)
            time.sleep(0.5)
    finally:
        stop.set()
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=120)
    elapsed = time.monotonic() - started

    final = final_statuses(backend.executions, ids)
    unsuccessful = [e for e in map(backend.executions.get, ids) if e.status != "SUCCESSFUL"]
    why = Counter(
        f"{e.status}:{e.errors[-1].exception_class_path if e.errors else ''}:{e.attempts}"
        for e in unsuccessful
    )
    stored = {e.id for e in backend.executions.page(limit=calls + 100).items}
    bodies = read_bodies(log, killed_at=killed_at)
    # Bodies by key alone: two executions of one key running at once would overlap here.
    by_key = [replace(b, token=b.token.split("/")[0]) for b in bodies]
    concurrent = overlapping(by_key) - overlapping(bodies)
    spans = figures(bodies, len(ids))
    holders = [backend.unique_keys.holder_id("default", TASK, key) for key in stale]
    return {
        "scenario": "unique-keys",
        "enqueues": calls,
        "keys": len(keys),
        "concurrency": threads,
        "executions": len(ids),
        "deduplicated": len(returned) - len(ids),
        "kill_9": kills,
        "stale_keys_taken_over": sum(
            1 for h, k in zip(holders, stale, strict=True) if h != f"lost-{k}"
        ),
        "stale_keys": len(stale),
        **spans,
        "concurrent_holders": concurrent,
        "duplicated_bodies": spans["duplicated_bodies"] + concurrent,
        "orphans": len(stored - set(ids)),
        "lost": len(ids) - final.get("SUCCESSFUL", 0) + spans["never_ran"],
        "stuck_running_or_ready": final.get("RUNNING", 0) + final.get("READY", 0),
        "unclear_enqueue_errors": sum(v for k, v in errors.items() if k != "unavailable"),
        "enqueue_unavailable": errors["unavailable"],
        "per_enqueue": {
            k: round(enqueue_ops[k] / max(calls, 1), 3)
            for k in ("writes", "reads", "commits", "conflicts")
        },
        "unsuccessful": dict(why),  # status:last error:attempts of each lost one
        "seconds": round(elapsed, 1),
    }
