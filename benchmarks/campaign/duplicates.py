"""Duplicate delivery: every execution delivered ``--deliveries`` times at once over HTTP.

As a misbehaving queue might: ``execute/`` on a threaded server, valid OIDC tokens.
Counts bodies that ran more than once, executions lost (not SUCCESSFUL after
platform-style redeliveries), and executions left RUNNING or READY.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .common import final_statuses, setup, tally


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--task-seconds",
        type=float,
        default=0.3,
        help="duplicates/load: how long each body sleeps (longer than the 2 s lease: heartbeats keep it)",
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    executions, deliveries, concurrency = args.executions, args.deliveries, args.concurrency
    from django_tasks_fs.emulators.gcloud.oidc import TokenIssuer
    from tests import tokens
    from tests.live_server import LiveServer, deliver

    issuer = TokenIssuer()
    certs = tokens.CertsServer(issuer)
    log = Path(tempfile.mkdtemp()) / "bodies.txt"
    with LiveServer() as server:
        setup(f"chaos-dup-{os.getpid()}", base_url=f"{server.url}/tasks/", certs_url=certs.url)
        from django.tasks import TaskResultStatus, task_backends

        from django_tasks_fs.store import DispatchState, new_execution_id
        from tests.factories import write_execution

        cloud: Any = task_backends["cloud"]
        ids = []
        for _ in range(executions):
            execution_id = new_execution_id()
            write_execution(
                cloud.executions,
                id=execution_id,
                task_path="tests.tasks.record_and_sleep",
                backend="cloud",
                args=[str(log), execution_id, args.task_seconds],
                max_attempts=5,
                dispatch_state=DispatchState.DISPATCHED,
            )
            ids.append(execution_id)
        token = tokens.sign(issuer, aud=cloud.audience)
        url = f"{server.url}/tasks/execute/"
        jobs = [i for i in ids for _ in range(deliveries)]
        random.shuffle(jobs)
        started = time.monotonic()
        with ThreadPoolExecutor(concurrency) as pool:
            statuses = list(pool.map(lambda i: (i, deliver(url, token, i)[0]), jobs))
        # Like Cloud Tasks: anything not acknowledged is delivered again until it is.
        for _ in range(20):
            pending = [
                i for i in ids if cloud.executions.get(i).status != TaskResultStatus.SUCCESSFUL
            ]
            if not pending:
                break
            time.sleep(0.5)
            for i in pending:
                statuses.append((i, deliver(url, token, i)[0]))
        elapsed = time.monotonic() - started
        bodies = Counter(
            line.split(" ", 1)[1]
            for line in log.read_text().splitlines()
            if line.startswith("end ")
        )
        final = final_statuses(cloud.executions, ids)
        taken_over = sum(1 for i in ids if cloud.executions.get(i).attempts > 1)
    certs.close()
    return {
        "scenario": args.scenario,
        "task_seconds": args.task_seconds,
        "executions": executions,
        "deliveries": len(statuses),
        "concurrency": concurrency,
        "status_codes": dict(Counter(code for _, code in statuses)),
        **tally(bodies, final, executions),
        "taken_over": taken_over,
        "seconds": round(elapsed, 1),
    }
