"""Reliability campaign (run on demand; its short versions run in the test suite).

    uv run python benchmarks/chaos.py --executions 100 --deliveries 20
    uv run python benchmarks/chaos.py --scenario api-faults --executions 200

Scenarios:

* ``duplicates``: every execution is delivered ``--deliveries`` times at once over real
  HTTP (``execute/`` on a threaded server, valid OIDC tokens), as a misbehaving queue
  might. Counts task bodies that ran more than once, executions lost (not SUCCESSFUL
  after the platform-style redeliveries), and deliveries answered 2xx while another
  held the lease.
* ``api-faults``: ``enqueue()`` against the local Google Cloud emulator while it fails
  ``CreateTask`` with UNAVAILABLE, or succeeds but answers DEADLINE_EXCEEDED; then the
  sweeper runs until nothing is PENDING and the emulator delivers. Counts executions
  lost and bodies run twice. (A second dispatch of an execution cannot create a second
  task: the task name is the execution id, and Cloud Tasks refuses it with
  ALREADY_EXISTS, which the sweeper counts as dispatched.)

Prints one JSON line per scenario with the figures.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))


def _setup(project: str, **urls: str) -> None:
    """Point TASKS (the test project's settings) at this run's servers."""
    from django.test.utils import override_settings

    from tests.settings import tasks_setting

    override_settings(TASKS=tasks_setting(project, **urls)).enable()  # resets the backends


def _deliver(url: str, token: str, execution_id: str) -> int:
    request = urllib.request.Request(
        url,
        data=f"execution_id={execution_id}&backend=cloud".encode(),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def duplicates(executions: int, deliveries: int, concurrency: int) -> dict[str, Any]:
    from emulator.gcloud.oidc import TokenIssuer
    from tests import tokens
    from tests.live_server import LiveServer

    issuer = TokenIssuer()
    certs = tokens.CertsServer(issuer)
    log = Path(tempfile.mkdtemp()) / "bodies.txt"
    with LiveServer() as server:
        _setup(f"chaos-dup-{os.getpid()}", base_url=f"{server.url}/tasks/", certs_url=certs.url)
        from django.tasks import TaskResultStatus, task_backends

        from django_tasks_fs.store import DispatchState, TaskExecution, new_execution_id

        cloud: Any = task_backends["cloud"]
        ids = []
        for _ in range(executions):
            now = cloud.executions.clock.now()
            execution = cloud.executions.create(
                TaskExecution(
                    id=new_execution_id(),
                    task_path="tests.tasks.record_and_sleep",
                    backend="cloud",
                    queue_name="default",
                    args=[str(log), "", 0.3],
                    enqueued_at=now,
                    run_after=now,
                    max_attempts=5,
                    dispatch_state=DispatchState.DISPATCHED,
                )
            )
            cloud.executions._compare_and_set(
                execution.id, lambda c, n, i=execution.id: c.evolve(args=[str(log), i, 0.3])
            )
            ids.append(execution.id)
        token = tokens.sign(issuer, aud=cloud.audience)
        url = f"{server.url}/tasks/execute/"
        jobs = [i for i in ids for _ in range(deliveries)]
        random.shuffle(jobs)
        started = time.monotonic()
        with ThreadPoolExecutor(concurrency) as pool:
            statuses = list(pool.map(lambda i: (i, _deliver(url, token, i)), jobs))
        # Like Cloud Tasks: anything not acknowledged is delivered again until it is.
        for _ in range(20):
            pending = [
                i for i in ids if cloud.executions.get(i).status != TaskResultStatus.SUCCESSFUL
            ]
            if not pending:
                break
            time.sleep(0.5)
            for i in pending:
                statuses.append((i, _deliver(url, token, i)))
        elapsed = time.monotonic() - started
        bodies = Counter(
            line.split(" ", 1)[1]
            for line in log.read_text().splitlines()
            if line.startswith("end ")
        )
        final = Counter(str(cloud.executions.get(i).status) for i in ids)
    certs.close()
    return {
        "scenario": "duplicates",
        "executions": executions,
        "deliveries": len(statuses),
        "concurrency": concurrency,
        "status_codes": dict(Counter(code for _, code in statuses)),
        "bodies_run": sum(bodies.values()),
        "duplicated_bodies": sum(max(0, c - 1) for c in bodies.values()),
        "lost": executions - final.get("SUCCESSFUL", 0),
        "stuck_running_or_ready": final.get("RUNNING", 0) + final.get("READY", 0),
        "seconds": round(elapsed, 1),
    }


def api_faults(executions: int) -> dict[str, Any]:
    from emulator.gcloud.server import GoogleCloudEmulator
    from tests.live_server import LiveServer

    log = Path(tempfile.mkdtemp()) / "bodies.txt"
    with GoogleCloudEmulator(cwd=REPO_ROOT) as gcloud, LiveServer() as server:
        project = f"chaos-api-{os.getpid()}"
        _setup(
            project,
            base_url=f"{server.url}/tasks/",
            certs_url=gcloud.certs_url,
            gcloud_host=gcloud.grpc_host,
        )
        from django.tasks import task_backends

        from django_tasks_fs.dispatching import sweep
        from django_tasks_fs.gcp.clients import tasks_client
        from django_tasks_fs.store import DispatchState
        from tests import tasks

        parent = f"projects/{project}/locations/us-central1"
        tasks_client(gcloud.grpc_host).create_queue(
            parent=parent,
            queue={
                "name": f"{parent}/queues/default",
                "retry_config": {
                    "max_attempts": 10,
                    "min_backoff": timedelta(seconds=0.1),
                    "max_backoff": timedelta(seconds=1),
                },
            },
        )
        cloud: Any = task_backends["cloud"]
        method = "google.cloud.tasks.v2.CloudTasks/CreateTask"
        injected: Counter[str] = Counter()
        ids = []
        started = time.monotonic()
        for n in range(executions):
            roll = random.random()
            if roll < 0.2:
                gcloud.faults.fail_next(method, "UNAVAILABLE", times=10)
                injected["UNAVAILABLE"] += 1
            elif roll < 0.4:
                gcloud.faults.fail_next(method, "DEADLINE_EXCEEDED", after=True, times=10)
                injected["DEADLINE_EXCEEDED after success"] += 1
            ids.append(tasks.record.using(backend="cloud").enqueue(str(log), f"b{n}").id)
            gcloud.faults.clear()
        pending_after_enqueue = sum(
            1 for i in ids if cloud.executions.get(i).dispatch_state == DispatchState.PENDING
        )
        for _ in range(30):
            sweep(cloud, grace=timedelta(0))
            if all(cloud.executions.get(i).dispatch_state == DispatchState.DISPATCHED for i in ids):
                break
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            final = Counter(str(cloud.executions.get(i).status) for i in ids)
            if final.get("SUCCESSFUL", 0) == executions:
                break
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        bodies = Counter(log.read_text().splitlines()) if log.exists() else Counter()
    return {
        "scenario": "api-faults",
        "executions": executions,
        "injected": dict(injected),
        "pending_after_enqueue": pending_after_enqueue,
        "bodies_run": sum(bodies.values()),
        "duplicated_bodies": sum(max(0, c - 1) for c in bodies.values()),
        "lost": executions - final.get("SUCCESSFUL", 0),
        "seconds": round(elapsed, 1),
    }


def worker_crash(executions: int, kills: int) -> dict[str, Any]:
    """kill -9 the whole ``run_tasks`` process group at random moments, restart it, repeat."""
    import signal
    import subprocess

    project = f"chaos-crash-{os.getpid()}"
    _setup(project)
    from django.tasks import task_backends

    from tests import tasks

    log = Path(tempfile.mkdtemp()) / "bodies.txt"
    backend: Any = task_backends["default"]
    ids = [tasks.record_interval.enqueue(str(log), f"t{n}", 0.05).id for n in range(executions)]
    env = {**os.environ, "TEST_FIRESTORE_PROJECT": project, "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "django", "run_tasks", "--backend", "default", "-v", "0"]
    started = time.monotonic()
    done_kills = 0
    kill_times: list[float] = []

    def finished() -> int:
        return sum(1 for e in backend.executions.page(limit=executions + 10).items if e.is_finished)

    while True:
        worker = subprocess.Popen(command, env=env, cwd=REPO_ROOT, start_new_session=True)
        if done_kills < kills:
            time.sleep(random.uniform(0.5, 2.0))
            os.killpg(worker.pid, signal.SIGKILL)
            kill_times.append(time.monotonic())
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
    starts: dict[str, list[float]] = {}
    ends: dict[str, list[float]] = {}
    for line in log.read_text().splitlines():
        kind, token, stamp = line.split()
        (starts if kind == "start" else ends).setdefault(token, []).append(float(stamp))
    overlapping = 0
    for token, token_starts in starts.items():
        # Pair each end with the latest unmatched start before it; a start that never
        # ended was killed: it ended at the first kill -9 after it.
        open_starts = sorted(token_starts)
        intervals = []
        for end in sorted(ends.get(token, [])):
            begin = max(b for b in open_starts if b <= end)
            open_starts.remove(begin)
            intervals.append((begin, end))
        for begin in open_starts:
            killed = min((k for k in kill_times if k >= begin), default=float("inf"))
            intervals.append((begin, killed))
        intervals.sort()
        overlapping += sum(
            1 for (_, end), (begin, _) in itertools.pairwise(intervals) if begin < end
        )
    final = Counter(str(backend.executions.get(i).status) for i in ids)
    return {
        "scenario": "worker-crash",
        "executions": executions,
        "kill_9": done_kills,
        "bodies_started": sum(len(v) for v in starts.values()),
        "bodies_completed": sum(len(v) for v in ends.values()),
        "reruns_after_a_crash": sum(len(v) for v in starts.values()) - executions,
        "completed_twice": sum(1 for v in ends.values() if len(v) > 1),
        "overlapping_bodies": overlapping,
        "duplicated_bodies": overlapping,
        "lost": executions - final.get("SUCCESSFUL", 0),
        "stuck_running_or_ready": final.get("RUNNING", 0) + final.get("READY", 0),
        "seconds": round(elapsed, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scenario", choices=["duplicates", "api-faults", "worker-crash"], default="duplicates"
    )
    parser.add_argument("--kills", type=int, default=10, help="worker-crash: how many kill -9")
    parser.add_argument("--executions", type=int, default=100)
    parser.add_argument("--deliveries", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    import logging

    logging.getLogger("django.request").setLevel(logging.CRITICAL)  # 503s are expected here
    from django_tasks_fs.testing.emulator import FirestoreEmulator

    with FirestoreEmulator() as firestore:
        os.environ["FIRESTORE_EMULATOR_HOST"] = firestore.host
        if args.scenario == "duplicates":
            result = duplicates(args.executions, args.deliveries, args.concurrency)
        elif args.scenario == "worker-crash":
            result = worker_crash(args.executions, args.kills)
        else:
            result = api_faults(args.executions)
    print(json.dumps(result))
    bad = result["lost"] or result["duplicated_bodies"] or result.get("stuck_running_or_ready")
    return 1 if bad else 0


if __name__ == "__main__":
    threading.excepthook = lambda args: None  # noisy client disconnects at shutdown
    sys.exit(main())
