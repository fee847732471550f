"""Run the demo (see the package docstring); exits 0 when everything behaved."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from django_tasks_fs.emulators.errors import EmulatorError
from django_tasks_fs.emulators.firestore import FirestoreEmulator

ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise SystemExit(f"demo: timed out waiting for {what}")


def run_demo() -> int:
    from django.tasks import task_backends
    from django.utils import timezone

    from django_tasks_fs import cancel_task, schedule_task
    from emulator.demo import tasks

    backend: Any = task_backends["default"]
    print("Enqueueing tasks...")
    results: dict[str, Any] = {
        "add(2, 3)": tasks.add.enqueue(2, 3),
        "flaky_upload('photo.jpg')": tasks.flaky_upload.enqueue("photo.jpg"),
        "broken_report()": tasks.broken_report.enqueue(),
        "add(40, 2), deferred 3 s": tasks.add.using(
            run_after=timezone.now() + timedelta(seconds=3)
        ).enqueue(40, 2),
        "long_export(), cancelled": tasks.long_export.enqueue(),
    }
    schedule = schedule_task(tasks.nightly_digest, "* * * * *", name="digest-every-minute")
    # Pretend the schedule was created a while ago and no worker ran since: --catch-up
    # fires the newest missed slot (each slot fires exactly once, whatever happens).
    backend.schedules.update(
        schedule.name, lambda s: s.evolve(created_at=s.created_at - timedelta(minutes=3))
    )

    # The same kind of work through the production path: Cloud Tasks (the local emulator)
    # delivers each execution to /tasks/execute/ on the app's HTTP server, with an OIDC token.
    from datetime import timedelta as _td

    from django_tasks_fs.gcp.clients import tasks_client

    cloud: Any = task_backends["cloud"]
    parent = f"projects/{cloud.config.project_id}/locations/{cloud.config.location}"
    tasks_client(cloud.emulator).create_queue(
        parent=parent,
        queue={
            "name": f"{parent}/queues/default",
            "retry_config": {"max_attempts": 3, "min_backoff": _td(seconds=0.2)},
        },
    )
    print(f"Created Cloud Tasks queue {parent}/queues/default (local emulator)")
    results["add(1, 2) via Cloud Tasks"] = tasks.add.using(backend="cloud").enqueue(1, 2)
    results["flaky_upload('a.pdf') via Cloud Tasks"] = tasks.flaky_upload.using(
        backend="cloud"
    ).enqueue("a.pdf")

    print("Starting: python -m django run_tasks --catch-up")
    worker = subprocess.Popen(
        [sys.executable, "-m", "django", "run_tasks", "--catch-up", "-v", "1"],
        cwd=ROOT,
        env=os.environ.copy(),
    )
    try:
        export = results["long_export(), cancelled"]
        wait_for(
            lambda: (export.refresh(), export.status)[1] == "RUNNING", 60, "the export to start"
        )
        print(f"cancel_task(...) -> {cancel_task(export)}")
        for result in results.values():
            wait_for(
                lambda r=result: (r.refresh(), r.is_finished)[1],
                60,
                f"{result.task.name} to finish",
            )
        digest_id = backend.schedules.get(schedule.name).last_execution_id
        wait_for(
            lambda: digest_id and backend.executions.get(digest_id).is_finished, 30, "the cron slot"
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)

    digest = backend.get_result(digest_id)
    rows = [*results.items(), ("nightly_digest() from cron", digest)]
    rows.sort(key=lambda row: "Cloud Tasks" in row[0])
    print()
    print(f"{'task':<40} {'status':<11} {'attempts':>8}  result / last error")
    print("-" * 96)
    for label, result in rows:
        if result.status == "SUCCESSFUL":
            outcome = repr(result.return_value)
        else:
            outcome = result.errors[-1].traceback.strip().splitlines()[-1]
        print(f"{label:<40} {result.status:<11} {result.attempts:>8}  {outcome[:56]}")
    expected = [
        "SUCCESSFUL",
        "SUCCESSFUL",
        "FAILED",
        "SUCCESSFUL",
        "FAILED",
        "SUCCESSFUL",
        "SUCCESSFUL",
        "SUCCESSFUL",
    ]
    if [str(r.status) for _, r in rows] != expected:
        print("demo: unexpected outcome", file=sys.stderr)
        return 1
    print("\nAll executions are in Firestore (emulator); nothing is left READY or RUNNING.")
    return 0


def main() -> int:
    from django_tasks_fs.emulators.gcloud.server import GoogleCloudEmulator
    from emulator.demo.http import free_port, serve

    try:
        with FirestoreEmulator() as firestore, GoogleCloudEmulator(cwd=ROOT) as gcloud:
            port = free_port()
            os.environ.update(
                FIRESTORE_EMULATOR_HOST=firestore.host,
                DJANGO_SETTINGS_MODULE="emulator.demo.settings",
                DEMO_PROJECT=f"demo-{os.getpid()}",
                DEMO_BASE_URL=f"http://127.0.0.1:{port}/tasks/",
                DEMO_CERTS_URL=gcloud.certs_url,
                DEMO_GCLOUD_HOST=gcloud.grpc_host,
                PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            )
            print(f"Firestore emulator (official) running at {firestore.host}")
            print(f"Google Cloud emulator (Cloud Tasks, Scheduler, Run Jobs) at {gcloud.grpc_host}")
            import django

            django.setup()
            # A 500 is how the app asks Cloud Tasks to retry; Django would log each one.
            logging.getLogger("django.request").setLevel(logging.CRITICAL)
            server = serve(port)
            print(f"Demo app serving {os.environ['DEMO_BASE_URL']} (the Cloud Tasks target)")
            try:
                return run_demo()
            finally:
                server.shutdown()
    except EmulatorError as exc:
        print(exc, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
