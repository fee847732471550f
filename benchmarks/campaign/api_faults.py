"""Google Cloud API faults at enqueue, then the sweeper.

``enqueue()`` against the local Google Cloud emulator while it fails ``CreateTask``
with UNAVAILABLE, or succeeds but answers DEADLINE_EXCEEDED; then the sweeper runs until
nothing is PENDING and the emulator delivers. Counts executions lost and bodies run
twice. (A second dispatch of an execution cannot create a second task: the task name
is the execution id, and Cloud Tasks refuses it with ALREADY_EXISTS, which the sweeper
counts as dispatched.)
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from .common import REPO_ROOT, final_statuses, setup, tally


def run(args: argparse.Namespace) -> dict[str, Any]:
    executions = args.executions
    from emulator.gcloud.server import GoogleCloudEmulator
    from tests.live_server import LiveServer

    log = Path(tempfile.mkdtemp()) / "bodies.txt"
    with GoogleCloudEmulator(cwd=REPO_ROOT) as gcloud, LiveServer() as server:
        project = f"chaos-api-{os.getpid()}"
        setup(
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
            final = final_statuses(cloud.executions, ids)
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
        **tally(bodies, final, executions),
        "seconds": round(elapsed, 1),
    }
