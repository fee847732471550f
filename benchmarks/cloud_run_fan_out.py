"""Cloud Run Jobs fan-out benchmark: ``enqueue_many()`` of N calls on a
CloudRunJobsBackend, one job execution of N tasks against N job executions.

    uv run python benchmarks/cloud_run_fan_out.py --tasks 500 --repeat 3

Each repeat measures, one after the other (same machine conditions), on a fresh
project each: **fan-out** (the default, ``fan_out_max_tasks`` 1000) and **one-each**
(``fan_out_max_tasks`` 1: what ``enqueue_many()`` did before, N RunJob calls sent 16
at once). State is in the official Firestore emulator, the job in this project's
Google Cloud emulator, its container ``true``: the tasks end at once, so what is timed
is the enqueue (the Firestore commits and the RunJob calls), in a child process, after
one untimed ``enqueue()`` that opens the channels and caches the job's retry limit.
Afterwards the job must have the expected number of executions (1 + ceil(N / 993),
as 993 ids fill the variable listing a fan-out's members, or 1 + N) running N + 1
tasks in all. Prints one JSON line per measurement and a summary;
the records go to ``benchmarks/results/cloud-run-fan-out-<timestamp>.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from bulk_enqueue import LOCATION, REPO_ROOT, _env, _run_child
from records import loadavg, machine_info, progress, results_path, write_jsonl

from django_tasks_fs.emulators.firestore import FirestoreEmulator
from django_tasks_fs.emulators.gcloud.server import GoogleCloudEmulator
from django_tasks_fs.gcp.clients import executions_client, jobs_client

JOB = "bench-job"
MODES = {"fan-out": 1000, "one-each": 1}

#: Run in a child process with DJANGO_SETTINGS_MODULE=fs_project.ops_settings.
ENQUEUE_SCRIPT = """
import dataclasses, json, os, time
import django
django.setup()
from django_tasks_fs import enqueue_many
from fs_project.tasks import noop
n = int(os.environ["BENCH_TASKS"])
backend = noop.get_backend()
backend.config = dataclasses.replace(
    backend.config, fan_out_max_tasks=int(os.environ["BENCH_FAN_OUT_MAX_TASKS"])
)
noop.enqueue()  # untimed: opens the channels, caches the job's retry limit
start = time.perf_counter()
results = enqueue_many(noop, [((), {})] * n)
elapsed = time.perf_counter() - start
assert len({r.id for r in results}) == n
print(json.dumps({"enqueue_s": elapsed}))
"""


log = progress("fan-out")


def _job(gcloud: GoogleCloudEmulator, project: str) -> str:
    """The job of ``project``: its container is ``true`` (each task ends at once)."""
    parent = f"projects/{project}/locations/{LOCATION}"
    jobs_client(gcloud.grpc_host).create_job(
        parent=parent,
        job_id=JOB,
        job={"template": {"template": {"max_retries": 0, "containers": [{"command": ["true"]}]}}},
    ).result(timeout=30)
    return f"{parent}/jobs/{JOB}"


def measure(firestore: str, gcloud: GoogleCloudEmulator, mode: str, tasks: int) -> dict[str, Any]:
    project = f"fan-{uuid.uuid4().hex[:10]}"
    job = _job(gcloud, project)
    env = _env(firestore, gcloud, "cloud_run_jobs", project)
    env.update(
        BENCH_TASKS=str(tasks),
        BENCH_JOB=JOB,
        BENCH_FAN_OUT_MAX_TASKS=str(MODES[mode]),
    )
    figures = _run_child(ENQUEUE_SCRIPT, env, mode)
    runs = list(
        executions_client(gcloud.grpc_host).list_executions(
            request={"parent": job, "page_size": 1000}
        )
    )
    # 993 ids fill the 32 KiB variable that lists a fan-out's members.
    expected = 1 + (-(-tasks // 993) if mode == "fan-out" else tasks)
    if len(runs) != expected or sum(r.task_count for r in runs) != tasks + 1:
        raise RuntimeError(f"{job}: {len(runs)} executions, not {expected}, or tasks lost")
    jobs_client(gcloud.grpc_host).delete_job(name=job).result(timeout=60)
    return {
        "kind": "run",
        "mode": mode,
        "tasks": tasks,
        "run_job_calls": len(runs) - 1,
        "enqueue_s": round(figures["enqueue_s"], 4),
        "tasks_per_s": round(tasks / figures["enqueue_s"], 1),
        "loadavg": loadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    path = results_path("cloud-run-fan-out")
    records: list[dict[str, Any]] = [machine_info()]
    with FirestoreEmulator() as firestore, GoogleCloudEmulator(cwd=REPO_ROOT) as gcloud:
        for repeat in range(args.repeat):
            for mode in MODES:
                log(f"repeat {repeat + 1}/{args.repeat}: {mode}, {args.tasks} calls ...")
                record = measure(firestore.host, gcloud, mode, args.tasks)
                print(json.dumps(record), flush=True)
                records.append(record)

    def median(mode: str) -> float:
        return statistics.median(
            r["enqueue_s"] for r in records if r["kind"] == "run" and r["mode"] == mode
        )

    summary = {
        "kind": "summary",
        "tasks": args.tasks,
        "median_enqueue_s": {mode: round(median(mode), 3) for mode in MODES},
        "fan_out_vs_one_each": round(median("one-each") / median("fan-out"), 2),
    }
    records.append(summary)
    print(json.dumps(summary), flush=True)
    write_jsonl(path, records)
    log(f"records: {path}")


if __name__ == "__main__":
    main()
