"""Google Cloud API faults at enqueue, then the sweeper.

``enqueue()`` against the local Google Cloud emulator while it fails some calls:

* Cloud Tasks ``CreateTask``: UNAVAILABLE (nothing created); DEADLINE_EXCEEDED after
  the task was created (the answer lost); ALREADY_EXISTS with no task behind it (a name
  the platform still remembers). The first two leave the execution PENDING for the
  sweeper, whose resend is de-duplicated by the task name; the third looks dispatched
  but is never delivered: the sweeper re-dispatches it under a new name once stale
  (``--stale-seconds``, 15 minutes in production).
* Cloud Run ``RunJob`` (``--job-executions``): UNAVAILABLE, or DEADLINE_EXCEEDED after
  the run started; the sweeper's resend must find that run, not start a second.

Counts executions lost, bodies run twice, and job runs started per execution.
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

CREATE_TASK = "google.cloud.tasks.v2.CloudTasks/CreateTask"
RUN_JOB = "google.cloud.run.v2.Jobs/RunJob"
#: (share of calls, method, code, after the call succeeded?)
TASK_FAULTS = (
    (0.15, "UNAVAILABLE", False),
    (0.15, "DEADLINE_EXCEEDED", True),
    (0.10, "ALREADY_EXISTS", False),
)
JOB_FAULTS = ((0.25, "UNAVAILABLE", False), (0.25, "DEADLINE_EXCEEDED", True))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--job-executions", type=int, default=None, help="api-faults: Cloud Run executions"
    )
    parser.add_argument(
        "--stale-seconds", type=float, default=10.0, help="api-faults: the sweeper's stale"
    )


def _inject(gcloud: Any, method: str, faults: Any, injected: Counter[str]) -> None:
    roll = random.random()
    for share, code, after in faults:
        if roll < share:
            gcloud.faults.fail_next(method, code, after=after, times=10)
            injected[f"{method.rsplit('/', 1)[1]} {code}{' after success' if after else ''}"] += 1
            return
        roll -= share


def _enqueue_all(
    gcloud: Any, method: str, faults: Any, count: int, enqueue: Any, injected: Counter[str]
) -> list[str]:
    ids = []
    for n in range(count):
        _inject(gcloud, method, faults, injected)
        ids.append(enqueue(n).id)
        gcloud.faults.clear()
    return ids


def run(args: argparse.Namespace) -> dict[str, Any]:
    from django_tasks_fs.emulators.gcloud.server import GoogleCloudEmulator
    from tests.live_server import LiveServer

    executions = args.executions
    job_executions = executions // 4 if args.job_executions is None else args.job_executions
    stale = timedelta(seconds=args.stale_seconds)
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
        from django_tasks_fs.gcp.clients import jobs_client
        from django_tasks_fs.store import DispatchState
        from tests import tasks
        from tests.factories import JOB, create_job, create_queue

        parent = f"projects/{project}/locations/us-central1"
        create_queue(gcloud.grpc_host, project, max_attempts=10, max_backoff=1.0)
        create_job(gcloud, project, max_retries=1)
        cloud: Any = task_backends["cloud"]
        jobs: Any = task_backends["cloudjobs"]
        injected: Counter[str] = Counter()
        started = time.monotonic()
        task_ids = _enqueue_all(
            gcloud,
            CREATE_TASK,
            TASK_FAULTS,
            executions,
            lambda n: tasks.record.using(backend="cloud").enqueue(str(log), f"b{n}"),
            injected,
        )
        job_ids = _enqueue_all(
            gcloud,
            RUN_JOB,
            JOB_FAULTS,
            job_executions,
            lambda n: tasks.record.using(backend="cloudjobs", queue_name=JOB).enqueue(
                str(log), f"j{n}"
            ),
            injected,
        )
        every = [(cloud, i) for i in task_ids] + [(jobs, i) for i in job_ids]
        # PENDING with the send's error: a send that went through leaves PENDING too (its
        # delivery's claim records the dispatch), so the state alone would count those.
        pending_after_enqueue = sum(
            1
            for b, i in every
            if (e := b.executions.get(i)).dispatch_state == DispatchState.PENDING
            and e.dispatch_error is not None
        )
        # The sweeper, as Cloud Scheduler would call it, until everything has finished.
        report: Counter[str] = Counter()
        deadline = time.monotonic() + 120 + executions + 3 * job_executions
        while time.monotonic() < deadline:
            for backend in (cloud, jobs):
                swept = sweep(backend, grace=timedelta(0), stale=stale)
                report["dispatched"] += swept.dispatched
                report["redispatched"] += swept.redispatched
            if all(b.executions.get(i).is_finished for b, i in every):
                break
            time.sleep(1.0)
        elapsed = time.monotonic() - started
        final = final_statuses(cloud.executions, task_ids) + final_statuses(
            jobs.executions, job_ids
        )
        bodies = Counter(log.read_text().splitlines()) if log.exists() else Counter()
        job = jobs_client(gcloud.grpc_host).get_job(name=f"{parent}/jobs/{JOB}")
        # A re-dispatch of a stale execution starts a run on purpose; a resend must not.
        job_redispatches = sum(jobs.executions.get(i).redispatches for i in job_ids)
    return {
        "scenario": "api-faults",
        "executions": executions + job_executions,
        "cloud_tasks_executions": executions,
        "cloud_run_executions": job_executions,
        "injected": dict(injected),
        "pending_after_enqueue": pending_after_enqueue,
        "sweeper": dict(report),
        "job_runs_started": job.execution_count,
        "job_runs_redispatched": job_redispatches,
        "job_runs_started_twice": job.execution_count - job_executions - job_redispatches,
        **tally(bodies, final, executions + job_executions),
        "seconds": round(elapsed, 1),
    }
