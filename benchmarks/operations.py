"""Operations benchmark: the Firestore operations (what Firestore bills) per task, per path.

    uv run python benchmarks/operations.py --tasks 200

Runs N ``noop`` tasks through each execution path on the emulators, with operation
accounting on (``DJANGO_TASKS_FS_OP_COUNTS``, see django_tasks_fs/store/ops/counting.py)
in every process of the path, and sums the per-process reports:

* ``local-defaults``: ``run_tasks --burst`` with the library's default options;
* ``local-drain``: the same with the drain benchmark's options (max_workers 2,
  batch_size 50, poll_interval_seconds 0.05);
* ``cloud-tasks``: CloudTasksBackend; the Google Cloud emulator delivers each task to
  the ``execute/`` endpoint of the app served over HTTP by a separate process;
* ``cloud-run-jobs``: CloudRunJobsBackend; the emulator runs one ``execute_task``
  process per task (enqueued in waves of ``--jobs-wave``, one wave at a time, to keep
  the machine from starting N interpreters at once);
* ``idle-worker``: ``run_tasks`` (default options) on an empty queue for ``--idle``
  seconds, scaled to queries per minute.

Each path has its own fresh project. The enqueue side is one process (``enqueue``);
the other side is the worker and its children, the HTTP server, or the job processes.
Prints one JSON line per path, then a table; the records also go to
``benchmarks/results/operations-<timestamp>.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from django.tasks import TaskResultStatus
from records import loadavg, machine_info, progress, results_path, write_jsonl

from django_tasks_fs.emulators.firestore import FirestoreEmulator
from django_tasks_fs.emulators.gcloud.server import GoogleCloudEmulator
from django_tasks_fs.gcp.clients import jobs_client, tasks_client
from django_tasks_fs.store import ExecutionFilter, ExecutionStore, StoreSettings
from django_tasks_fs.store.ops.counting import OP_COUNTS_ENV, OpCounts, collect

BENCHMARKS_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCHMARKS_DIR.parent
LOCATION = "us-central1"
JOB = "bench-job"

#: Firestore list prices (USD per 100,000 documents) used for the cost column:
#: Standard edition, regional location us-central1 (see docs/benchmarks.md).
PRICE_PER_100K = {"reads": 0.03, "writes": 0.09, "deletes": 0.01}
#: The least an execution can cost: written when enqueued, claimed, finished; read once.
FLOOR = {"writes": 3, "reads": 1}

#: Reads task counts on stdin, one per line; enqueues that many noops; answers "ok".
ENQUEUE_SCRIPT = """
import sys
import django
django.setup()
from fs_project.tasks import noop
for line in sys.stdin:
    for _ in range(int(line)):
        noop.enqueue()
    print("ok", flush=True)
"""

#: Serves the app (the execute/ endpoint) on BENCH_PORT until SIGTERM, then exits
#: normally (so that its operation report is written).
SERVER_SCRIPT = """
import logging, os, signal, threading
import django
django.setup()
logging.getLogger("django.request").setLevel(logging.CRITICAL)
from emulator.demo.http import serve
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
server = serve(int(os.environ["BENCH_PORT"]))
stop.wait()
server.shutdown()
"""


class BenchmarkError(RuntimeError):
    """A path did not end with every task SUCCESSFUL."""


log = progress("operations")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Run:
    """One path: a fresh project, the environment of its processes, their reports."""

    def __init__(self, name: str, firestore_host: str, workdir: Path, **env: str) -> None:
        self.name = name
        self.project = f"ops-{name}-{os.getpid()}-{int(time.time())}"
        self.dir = workdir / name
        self.firestore_host = firestore_host
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("DJANGO_", "FIRESTORE_", "BENCH_"))
            and key not in ("PYTHONPATH", "PYTHONHOME", "PYTHONDONTWRITEBYTECODE", OP_COUNTS_ENV)
        }
        self.env.update(
            FIRESTORE_EMULATOR_HOST=firestore_host,
            DJANGO_SETTINGS_MODULE="fs_project.ops_settings",
            PYTHONPATH=os.pathsep.join([str(BENCHMARKS_DIR), str(REPO_ROOT)]),
            BENCH_PROJECT=self.project,
            **env,
        )
        self.store = ExecutionStore(StoreSettings(project=self.project))  # not counted

    def env_for(self, role: str) -> dict[str, str]:
        """The environment of a process of ``role``: its reports go to their own folder."""
        return {**self.env, OP_COUNTS_ENV: str(self.dir / role)}

    def popen(self, args: list[str], role: str, **kwargs: Any) -> subprocess.Popen[str]:
        log_file = (self.dir / f"{role}.log").open("a")
        return subprocess.Popen(
            [sys.executable, *args],
            env=self.env_for(role),
            cwd=REPO_ROOT,
            stderr=log_file,
            text=True,
            **kwargs,
        )

    def enqueuer(self) -> Enqueuer:
        self.dir.mkdir(parents=True, exist_ok=True)
        return Enqueuer(self.popen(["-c", ENQUEUE_SCRIPT], "enqueue", stdin=-1, stdout=-1))

    def counts(self) -> dict[str, OpCounts]:
        roles = sorted(p.name for p in self.dir.iterdir() if p.is_dir())
        return {role: collect(self.dir / role) for role in roles}

    def finished(self) -> tuple[int, int]:
        """(SUCCESSFUL, FAILED) executions of the project, read without being counted."""
        return (
            self.store.count(ExecutionFilter(status=TaskResultStatus.SUCCESSFUL)),
            self.store.count(ExecutionFilter(status=TaskResultStatus.FAILED)),
        )

    def wait_successful(self, tasks: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            successful, failed = self.finished()
            if failed:
                raise BenchmarkError(f"{self.name}: {failed} executions FAILED (see {self.dir})")
            if successful >= tasks:
                return
            time.sleep(0.5)
        raise BenchmarkError(f"{self.name}: {self.finished()} after {timeout}s, wanted {tasks}")


class Enqueuer:
    """The enqueue process of a path: ``enqueue(k)`` has it enqueue k tasks."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.stdin: IO[str] = process.stdin  # type: ignore[assignment]
        self.stdout: IO[str] = process.stdout  # type: ignore[assignment]

    def enqueue(self, count: int) -> None:
        self.stdin.write(f"{count}\n")
        self.stdin.flush()
        if self.stdout.readline().strip() != "ok":
            raise BenchmarkError(f"the enqueue process failed (exit {self.process.poll()})")

    def close(self) -> None:
        self.stdin.close()
        if self.process.wait(timeout=120) != 0:
            raise BenchmarkError(f"the enqueue process exited {self.process.returncode}")


def stop(process: subprocess.Popen[str], timeout: float = 120) -> int:
    """SIGTERM, then wait (a graceful exit writes the process's report)."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise BenchmarkError(f"{process.args!r} did not stop within {timeout}s") from None


# -- the paths -------------------------------------------------------------------------


def local_path(run: Run, tasks: int, timeout: float) -> None:
    enqueuer = run.enqueuer()
    enqueuer.enqueue(tasks)
    enqueuer.close()
    worker = run.popen(["-m", "django", "run_tasks", "--burst", "-v", "0"], "worker")
    if worker.wait(timeout=timeout) != 0:
        raise BenchmarkError(f"{run.name}: run_tasks exited {worker.returncode}")
    run.wait_successful(tasks, 30)


def cloud_tasks_path(run: Run, tasks: int, timeout: float, gcloud: GoogleCloudEmulator) -> None:
    parent = f"projects/{run.project}/locations/{LOCATION}"
    tasks_client(gcloud.grpc_host).create_queue(
        parent=parent,
        queue={"name": f"{parent}/queues/default", "retry_config": {"max_attempts": 3}},
    )
    run.dir.mkdir(parents=True, exist_ok=True)
    port = int(run.env["BENCH_PORT"])
    server = run.popen(["-c", SERVER_SCRIPT], "server")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise BenchmarkError(f"the app server did not start (see {run.dir})") from None
                time.sleep(0.1)
        enqueuer = run.enqueuer()
        enqueuer.enqueue(tasks)
        enqueuer.close()
        run.wait_successful(tasks, timeout)
        time.sleep(1.0)  # the last responses reach the emulator (no retry left pending)
    finally:
        stop(server)


def cloud_run_jobs_path(
    run: Run, tasks: int, timeout: float, gcloud: GoogleCloudEmulator, wave: int
) -> None:
    run.dir.mkdir(parents=True, exist_ok=True)
    # The job's container env: what the app needs, and where its processes report.
    env = {
        k: v
        for k, v in run.env_for("jobs").items()
        if k.startswith(("DJANGO_", "FIRESTORE_", "BENCH_")) or k in ("PYTHONPATH", OP_COUNTS_ENV)
    }
    container = {"image": "app", "env": [{"name": k, "value": v} for k, v in env.items()]}
    jobs_client(gcloud.grpc_host).create_job(
        parent=f"projects/{run.project}/locations/{LOCATION}",
        job_id=JOB,
        job={
            "template": {
                "task_count": 1,
                "template": {"max_retries": 2, "containers": [container]},
            }
        },
    ).result(timeout=30)
    enqueuer = run.enqueuer()
    done = 0
    while done < tasks:
        count = min(wave, tasks - done)
        enqueuer.enqueue(count)
        done += count
        run.wait_successful(done, timeout)
    enqueuer.close()
    time.sleep(1.0)  # the job processes of the last wave have exited (reports written)


def idle_worker(run: Run, seconds: float) -> float:
    """Run ``run_tasks`` on an empty queue for ``seconds``; return its lifetime."""
    run.dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    worker = run.popen(["-m", "django", "run_tasks", "-v", "0"], "worker")
    time.sleep(seconds)
    if stop(worker) != 0:
        raise BenchmarkError(f"idle run_tasks exited {worker.returncode}")
    return time.monotonic() - started


# -- figures ---------------------------------------------------------------------------


def cost_per_million(per_task: dict[str, float]) -> float:
    """USD per million tasks at PRICE_PER_100K (billed reads and writes)."""
    return (
        per_task["billed_reads"] * PRICE_PER_100K["reads"]
        + per_task["writes"] * PRICE_PER_100K["writes"]
    ) * 10


FLOOR_COST = cost_per_million({"billed_reads": FLOOR["reads"], "writes": FLOOR["writes"]})


def record(name: str, description: str, tasks: int, roles: dict[str, OpCounts]) -> dict[str, Any]:
    total = OpCounts()
    for counts in roles.values():
        total = total + counts
    figures = total.as_dict()
    per_task = {k: round(v / tasks, 3) for k, v in figures.items()}
    cost = cost_per_million(per_task)
    return {
        "kind": "path",
        "path": name,
        "description": description,
        "tasks": tasks,
        "total": figures,
        "per_task": per_task,
        "by_process_role": {role: c.as_dict() for role, c in roles.items()},
        "usd_per_million_tasks": round(cost, 2),
        "vs_floor": {
            "writes": round(per_task["writes"] / FLOOR["writes"], 2),
            "reads": round(per_task["billed_reads"] / FLOOR["reads"], 2),
            "cost": round(cost / FLOOR_COST, 2),
        },
    }


def table(records: list[dict[str, Any]]) -> str:
    head = (
        "| path | tasks | writes/task | reads/task | billed reads/task | queries/task "
        "| commits/task | conflicts/task | RPCs/task | USD per 1M tasks | cost vs floor |"
    )
    lines = [head, "| " + " | ".join(["---"] * 11) + " |"]
    for r in records:
        if r["kind"] != "path":
            continue
        p = r["per_task"]
        lines.append(
            f"| {r['path']} | {r['tasks']} | {p['writes']:.2f} | {p['reads']:.2f} | "
            f"{p['billed_reads']:.2f} | {p['queries']:.2f} | {p['commits']:.2f} | "
            f"{p['conflicts']:.2f} | {p['rpcs']:.2f} | {r['usd_per_million_tasks']:.2f} | "
            f"{r['vs_floor']['cost']:.2f} |"
        )
    lines.append(
        f"| floor | | {FLOOR['writes']:.2f} | {FLOOR['reads']:.2f} | {FLOOR['reads']:.2f} | "
        f"| | | | {FLOOR_COST:.2f} | 1.00 |"
    )
    for r in records:
        if r["kind"] == "idle":
            lines.append("")
            lines.append(
                f"Idle run_tasks (default options), {r['seconds']:.1f} s: "
                f"{r['queries_per_minute']:.1f} queries/min, "
                f"{r['billed_reads_per_minute']:.1f} billed reads/min "
                f"({r['usd_per_month']:.2f} USD per 30 days)."
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200, help="tasks per path (default 200)")
    parser.add_argument(
        "--jobs-tasks", type=int, help="tasks of the Cloud Run Jobs path (default: --tasks)"
    )
    parser.add_argument("--jobs-wave", type=int, default=10, help="job processes at once")
    parser.add_argument("--idle", type=float, default=20.0, help="idle worker seconds")
    parser.add_argument(
        "--path",
        action="append",
        choices=["local-defaults", "local-drain", "cloud-tasks", "cloud-run-jobs", "idle"],
        help="run only these (repeatable; default: all)",
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per path")
    args = parser.parse_args(argv)
    paths = args.path or ["local-defaults", "local-drain", "cloud-tasks", "cloud-run-jobs", "idle"]
    jobs_tasks = args.jobs_tasks or args.tasks

    results = results_path("operations")
    machine = machine_info()
    machine.update(command="uv run python benchmarks/operations.py " + " ".join(sys.argv[1:]))
    records: list[dict[str, Any]] = [machine]
    workdir = Path(tempfile.mkdtemp(prefix="operations-"))

    def save() -> None:
        write_jsonl(results, records)

    try:
        with (
            FirestoreEmulator(log_path=workdir / "firestore.log") as firestore,
            GoogleCloudEmulator(cwd=REPO_ROOT, log_dir=workdir / "gcloud") as gcloud,
        ):
            os.environ["FIRESTORE_EMULATOR_HOST"] = firestore.host  # the uncounted checks
            cloud_env = {
                "BENCH_CERTS_URL": gcloud.certs_url,
                "BENCH_GCLOUD_HOST": gcloud.grpc_host,
                "BENCH_JOB": JOB,
            }
            plans: dict[str, tuple[str, int, Callable[[Run], Any], dict[str, str]]] = {
                "local-defaults": (
                    "run_tasks --burst, default options (max_workers 4, batch_size 4, poll 1 s)",
                    args.tasks,
                    lambda run: local_path(run, args.tasks, args.timeout),
                    {"BENCH_BACKEND": "local"},
                ),
                "local-drain": (
                    "run_tasks --burst, drain options (max_workers 2, batch_size 50, poll 0.05 s)",
                    args.tasks,
                    lambda run: local_path(run, args.tasks, args.timeout),
                    {"BENCH_BACKEND": "local", "BENCH_DRAIN_OPTIONS": "1"},
                ),
                "cloud-tasks": (
                    "CloudTasksBackend: enqueue + execute/ (HTTP server process)",
                    args.tasks,
                    lambda run: cloud_tasks_path(run, args.tasks, args.timeout, gcloud),
                    {"BENCH_BACKEND": "cloud_tasks", **cloud_env},
                ),
                "cloud-run-jobs": (
                    "CloudRunJobsBackend: enqueue + one execute_task process per task",
                    jobs_tasks,
                    lambda run: cloud_run_jobs_path(
                        run, jobs_tasks, args.timeout, gcloud, args.jobs_wave
                    ),
                    {"BENCH_BACKEND": "cloud_run_jobs", **cloud_env},
                ),
            }
            for name in paths:
                if name == "idle":
                    run = Run("idle", firestore.host, workdir, BENCH_BACKEND="local")
                    log(f"idle worker for {args.idle:.0f} s ...")
                    seconds = idle_worker(run, args.idle)
                    roles = run.counts()
                    total = OpCounts()
                    for counts in roles.values():
                        total = total + counts
                    per_minute = 60 / seconds
                    reads_per_minute = total.billed_reads * per_minute
                    idle = {
                        "kind": "idle",
                        "seconds": round(seconds, 2),
                        "total": total.as_dict(),
                        "queries_per_minute": round(total.queries * per_minute, 1),
                        "billed_reads_per_minute": round(reads_per_minute, 1),
                        "usd_per_month": round(
                            reads_per_minute * 60 * 24 * 30 * PRICE_PER_100K["reads"] / 1e5, 2
                        ),
                    }
                    records.append(idle)
                    print(json.dumps(idle), flush=True)
                    save()
                    continue
                description, tasks, drive, env = plans[name]
                if name == "cloud-tasks":
                    port = free_port()
                    env = {
                        **env,
                        "BENCH_PORT": str(port),
                        "BENCH_BASE_URL": f"http://127.0.0.1:{port}/tasks/",
                    }
                run = Run(name, firestore.host, workdir, **env)
                log(f"{name}: {tasks} tasks (load {loadavg()}) ...")
                started = time.monotonic()
                drive(run)
                entry = record(name, description, tasks, run.counts())
                entry["seconds"] = round(time.monotonic() - started, 2)
                records.append(entry)
                print(json.dumps(entry), flush=True)
                save()
    except BenchmarkError as err:
        log(f"FAILED: {err} (logs in {workdir})")
        save()
        return 1
    print()
    print(table(records))
    log(f"results -> {results.relative_to(REPO_ROOT)}")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
