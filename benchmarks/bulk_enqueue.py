"""Bulk enqueue benchmark: ``enqueue_many()`` against N serial ``enqueue()`` calls.

    uv run python benchmarks/bulk_enqueue.py --tasks 2000 --repeat 3

Each repeat measures, one after the other (same machine conditions), N ``noop`` tasks:

* **cloud_tasks**: ``CloudTasksBackend``, state in the official Firestore emulator, the
  tasks sent to this project's Google Cloud emulator (its queue paused, so nothing is
  delivered while we measure): N serial ``enqueue()`` calls, then ``enqueue_many()``
  of N calls, each on a fresh project;
* **local**: ``ProcessBackend``, the same two ways (no Cloud Tasks: writes only);
* **django-tasks-db**: N serial ``enqueue()`` calls of its ``DatabaseBackend`` on a
  fresh SQLite file (``benchmarks/anchors``), each committing on its own.

Only the enqueue calls are timed, in one child process per measurement, after one
untimed ``enqueue()`` that opens the channels and caches the queue's retry limit.
Afterwards exactly N + 1 executions must exist (the queue must hold N + 1 tasks for
cloud_tasks). Prints one JSON line per measurement and a summary table; the records go
to ``benchmarks/results/bulk-enqueue-<timestamp>.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

# benchmarks/ (for anchors and fs_project) and the repository root (for emulator).
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from anchors.runner import DEFAULT_VENV, ensure_venv, installed_versions, time_enqueue
from records import loadavg, machine_info, progress, results_path, write_jsonl

from django_tasks_fs.emulators.firestore import FirestoreEmulator
from django_tasks_fs.emulators.gcloud.server import GoogleCloudEmulator
from django_tasks_fs.gcp.clients import tasks_client

BENCHMARKS_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCHMARKS_DIR.parent
LOCATION = "us-central1"
#: The targets of the issue: bulk vs serial on Cloud Tasks, and vs django-tasks-db.
TARGET_VS_SERIAL = 5.0
TARGET_VS_TASKS_DB = 1.0

#: Run in a child process with DJANGO_SETTINGS_MODULE=fs_project.ops_settings.
ENQUEUE_SCRIPT = """
import json, os, time
import django
django.setup()
from django_tasks_fs import enqueue_many
from django_tasks_fs.store.ops.counting import enable_counting
from fs_project.tasks import noop
n, mode = int(os.environ["BENCH_TASKS"]), os.environ["BENCH_MODE"]
backend = noop.get_backend()
if os.environ.get("BENCH_CONCURRENCY"):
    backend.dispatch_concurrency = int(os.environ["BENCH_CONCURRENCY"])
noop.enqueue()  # untimed: opens the channels, caches the queue's retry limit
counts = enable_counting()
backend.__dict__.pop("executions", None)  # a new store: counted from here
counts.reset()
start = time.perf_counter()
if mode == "bulk":
    results = enqueue_many(noop, [((), {})] * n)
else:
    results = [noop.enqueue() for _ in range(n)]
elapsed = time.perf_counter() - start
assert len({r.id for r in results}) == n
print(json.dumps({"enqueue_s": elapsed, "ops": counts.as_dict()}))
"""


log = progress("bulk")


def _env(firestore: str, gcloud: GoogleCloudEmulator, backend: str, project: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "FIRESTORE_", "BENCH_"))
        and key not in ("PYTHONPATH", "PYTHONHOME", "PYTHONDONTWRITEBYTECODE")
    }
    env.update(
        FIRESTORE_EMULATOR_HOST=firestore,
        DJANGO_SETTINGS_MODULE="fs_project.ops_settings",
        PYTHONPATH=os.pathsep.join([str(BENCHMARKS_DIR), str(REPO_ROOT)]),
        BENCH_BACKEND=backend,
        BENCH_PROJECT=project,
        BENCH_GCLOUD_HOST=gcloud.grpc_host,
        BENCH_CERTS_URL=gcloud.certs_url,
    )
    return env


def _run_child(script: str, env: dict[str, str], what: str) -> dict[str, Any]:
    """Run ``script`` in a child process of this interpreter; its last line, as JSON."""
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def _paused_queue(gcloud: GoogleCloudEmulator, project: str) -> str:
    """Create the ``default`` queue of ``project``, paused: tasks are kept, not delivered."""
    client = tasks_client(gcloud.grpc_host)
    parent = f"projects/{project}/locations/{LOCATION}"
    name = f"{parent}/queues/default"
    client.create_queue(parent=parent, queue={"name": name})
    client.pause_queue(name=name)
    return name


def measure(
    firestore: str,
    gcloud: GoogleCloudEmulator,
    backend: str,
    mode: str,
    tasks: int,
    concurrency: int | None = None,
) -> dict[str, Any]:
    """Time N enqueues of ``mode`` (bulk or serial) on ``backend`` (local or cloud_tasks)."""
    project = f"bulk-{uuid.uuid4().hex[:10]}"
    queue = _paused_queue(gcloud, project) if backend == "cloud_tasks" else None
    env = _env(firestore, gcloud, backend, project)
    env.update(BENCH_TASKS=str(tasks), BENCH_MODE=mode, BENCH_CONCURRENCY=str(concurrency or ""))
    figures = _run_child(ENQUEUE_SCRIPT, env, f"{backend}/{mode}")
    record: dict[str, Any] = {
        "kind": "run",
        "system": f"fs-{backend}",
        "mode": mode,
        "tasks": tasks,
        "enqueue_s": round(figures["enqueue_s"], 4),
        "tasks_per_s": round(tasks / figures["enqueue_s"], 1),
        "ops": figures["ops"],
        "loadavg": loadavg(),
    }
    if queue is not None:
        listed = list(
            tasks_client(gcloud.grpc_host).list_tasks(request={"parent": queue, "page_size": 1000})
        )
        if len(listed) != tasks + 1:
            raise RuntimeError(f"{queue} holds {len(listed)} tasks, not {tasks + 1}")
        # A paused queue's tasks are re-checked by the emulator's dispatcher: drop them,
        # or each measurement would slow the next one.
        tasks_client(gcloud.grpc_host).delete_queue(name=queue)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="the anchors' venv")
    parser.add_argument(
        "--concurrency", type=int, help="dispatch_concurrency of the backend (default: its own)"
    )
    args = parser.parse_args()

    anchor_python = ensure_venv(args.venv)
    records: list[dict[str, Any]] = [machine_info(installed_versions(anchor_python))]
    runs: list[dict[str, Any]] = []
    with FirestoreEmulator() as firestore, GoogleCloudEmulator(cwd=REPO_ROOT) as gcloud:
        for repeat in range(1, args.repeat + 1):
            for backend, mode in (
                ("cloud_tasks", "serial"),
                ("cloud_tasks", "bulk"),
                ("local", "serial"),
                ("local", "bulk"),
            ):
                record = measure(
                    firestore.host, gcloud, backend, mode, args.tasks, args.concurrency
                )
                record["repeat"] = repeat
                runs.append(record)
                print(json.dumps(record), flush=True)
                log(f"{backend} {mode}: {record['tasks_per_s']} tasks/s")
            anchor = time_enqueue("tasks_db", args.tasks, venv=args.venv)
            anchor.update(kind="run", system="tasks_db", mode="serial", repeat=repeat)
            anchor["tasks_per_s"] = anchor["enqueue_tasks_per_s"]
            anchor["loadavg"] = loadavg()
            runs.append(anchor)
            print(json.dumps(anchor), flush=True)
            log(f"django-tasks-db serial: {anchor['tasks_per_s']} tasks/s")

    def median(system: str, mode: str) -> float:
        rates = [r["tasks_per_s"] for r in runs if r["system"] == system and r["mode"] == mode]
        return statistics.median(rates)

    summary = {
        "kind": "summary",
        "tasks": args.tasks,
        "repeat": args.repeat,
        "concurrency": args.concurrency,
        "median_tasks_per_s": {
            f"{s} {m}": median(s, m)
            for s, m in (
                ("fs-cloud_tasks", "bulk"),
                ("fs-cloud_tasks", "serial"),
                ("fs-local", "bulk"),
                ("fs-local", "serial"),
                ("tasks_db", "serial"),
            )
        },
    }
    rates = summary["median_tasks_per_s"]
    summary["cloud_bulk_vs_serial"] = round(
        rates["fs-cloud_tasks bulk"] / rates["fs-cloud_tasks serial"], 2
    )
    summary["local_bulk_vs_serial"] = round(rates["fs-local bulk"] / rates["fs-local serial"], 2)
    summary["cloud_bulk_vs_tasks_db"] = round(
        rates["fs-cloud_tasks bulk"] / rates["tasks_db serial"], 2
    )
    summary["local_bulk_vs_tasks_db"] = round(rates["fs-local bulk"] / rates["tasks_db serial"], 2)
    summary["targets_met"] = (
        summary["cloud_bulk_vs_serial"] >= TARGET_VS_SERIAL
        and summary["cloud_bulk_vs_tasks_db"] >= TARGET_VS_TASKS_DB
    )
    records += [*runs, summary]
    out = results_path("bulk-enqueue")
    write_jsonl(out, records)
    print(json.dumps(summary, indent=2))
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
