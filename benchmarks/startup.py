"""Worker start-up against its floor: ``run_tasks --burst`` on an empty queue.

    uv run python benchmarks/startup.py --repeat 5

The *floor* is what any worker on Firestore pays before it can know the queue is
empty: start Python, ``django.setup()`` (bare settings, no app), import the Firestore
client and run one query (``FLOOR_SCRIPT``). *Ours* is ``python -m django run_tasks
--burst`` on an empty emulator project (``benchmarks/fs_project``), which exits after
finding nothing to run. The two alternate, each repeat on a fresh project id; the
figures are medians of wall-clock seconds and of CPU seconds (user + system of the
process and its children, which a loaded machine distorts less than wall time).
``benchmarks/drain.py`` runs the same two measurements in every repeat.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BENCHMARKS_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCHMARKS_DIR.parent
sys.path.insert(0, str(REPO_ROOT))

FLOOR_SETTINGS = "fs_project.floor_settings"
FLOOR_SCRIPT = """
import os
import django
django.setup()
from google.cloud import firestore
client = firestore.Client(project=os.environ["BENCH_PROJECT"])
query = client.collection("executions").where(
    filter=firestore.FieldFilter("status", "==", "READY")
)
list(query.limit(1).stream())
"""
#: ``run_tasks`` arguments of the empty-queue run (as benchmarks/drain.py runs it).
WORKER_ARGS = ("run_tasks", "--burst", "--max-workers", "2", "--batch-size", "100", "-v", "0")


class StartupError(RuntimeError):
    """A timed process failed."""


def environment(emulator_host: str, project: str, settings: str) -> dict[str, str]:
    """A clean environment: the emulator, a settings module, benchmarks/ on the path."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "FIRESTORE_", "BENCH_"))
        and key not in ("PYTHONPATH", "PYTHONHOME", "PYTHONDONTWRITEBYTECODE")
    }
    env.update(
        FIRESTORE_EMULATOR_HOST=emulator_host,
        DJANGO_SETTINGS_MODULE=settings,
        PYTHONPATH=os.pathsep.join([str(BENCHMARKS_DIR), str(REPO_ROOT)]),
        BENCH_PROJECT=project,
    )
    return env


def timed(args: Sequence[str], env: dict[str, str], *, timeout: float = 300.0) -> dict[str, float]:
    """Run ``args``; its wall seconds and CPU seconds (with its children's)."""
    before = _children_cpu()
    start = time.perf_counter()
    proc = subprocess.Popen(
        list(args), env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise StartupError(f"{' '.join(args)} still running after {timeout}s") from None
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise StartupError(f"{' '.join(args)} exited {proc.returncode}:\n{out.decode()[-4000:]}")
    return {"wall_s": wall, "cpu_s": _children_cpu() - before}


def _children_cpu() -> float:
    """User + system seconds of this process's reaped children (and theirs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def floor_run(emulator_host: str, project: str) -> dict[str, float]:
    """One run of the floor script."""
    env = environment(emulator_host, project, FLOOR_SETTINGS)
    return timed([sys.executable, "-c", FLOOR_SCRIPT], env)


def worker_run(
    emulator_host: str, project: str, settings: str, args: Sequence[str]
) -> dict[str, float]:
    """One ``python -m django ARGS`` run (the worker on an empty queue)."""
    env = environment(emulator_host, project, settings)
    return timed([sys.executable, "-m", "django", *args], env)


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of floor and ours, and their ratios."""
    figures: dict[str, Any] = {}
    for kind in ("floor", "ours"):
        for measure in ("wall_s", "cpu_s"):
            values = [r[measure] for r in runs if r["kind"] == kind]
            figures[f"{kind}_{measure}"] = round(statistics.median(values), 3) if values else None
    for measure in ("wall_s", "cpu_s"):
        floor, ours = figures[f"floor_{measure}"], figures[f"ours_{measure}"]
        figures[f"ratio_{measure}"] = round(ours / floor, 2) if floor and ours else None
    figures["runs"] = len(runs)
    return figures


def measure(emulator_host: str, repeat: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``repeat`` alternating runs of the floor and of ours; the runs and the summary."""
    runs: list[dict[str, Any]] = []
    for index in range(1, repeat + 1):
        project = f"startup-{uuid.uuid4().hex[:8]}"
        runs.append({"kind": "floor", "repeat": index, **floor_run(emulator_host, project)})
        ours = worker_run(emulator_host, project, "fs_project.settings", WORKER_ARGS)
        runs.append({"kind": "ours", "repeat": index, **ours})
    return runs, summarize(runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each (default 5)")
    parser.add_argument("--emulator-host", help="HOST:PORT of a running emulator")
    args = parser.parse_args(argv)
    if args.emulator_host:
        runs, summary = measure(args.emulator_host, args.repeat)
    else:
        from django_tasks_fs.emulators.firestore import FirestoreEmulator

        with FirestoreEmulator() as emulator:
            measure(emulator.host, 1)  # warm the emulator (a JVM) up; not counted
            runs, summary = measure(emulator.host, args.repeat)
    for run in runs:
        print(json.dumps(run), file=sys.stderr)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
