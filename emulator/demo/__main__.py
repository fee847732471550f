"""Run the demo (see the package docstring); exits 0 when everything behaved."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from emulator.firestore import EmulatorFailed, EmulatorNotFound, FirestoreEmulator

ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise SystemExit(f"demo: timed out waiting for {what}")


def run_demo() -> int:
    import django

    django.setup()
    from django.tasks import task_backends
    from django.utils import timezone

    from django_tasks_fs import cancel_task, schedule_task
    from emulator.demo import tasks

    backend: Any = task_backends["default"]
    print("Enqueueing tasks...")
    results = {
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
    print()
    print(f"{'task':<32} {'status':<11} {'attempts':>8}  result / last error")
    print("-" * 96)
    for label, result in rows:
        if result.status == "SUCCESSFUL":
            outcome = repr(result.return_value)
        else:
            outcome = result.errors[-1].traceback.strip().splitlines()[-1]
        print(f"{label:<32} {result.status:<11} {result.attempts:>8}  {outcome[:60]}")
    expected = ["SUCCESSFUL", "SUCCESSFUL", "FAILED", "SUCCESSFUL", "FAILED", "SUCCESSFUL"]
    if [str(r.status) for _, r in rows] != expected:
        print("demo: unexpected outcome", file=sys.stderr)
        return 1
    print("\nAll executions are in Firestore (emulator); nothing is left READY or RUNNING.")
    return 0


def main() -> int:
    try:
        with FirestoreEmulator() as emulator:
            os.environ["FIRESTORE_EMULATOR_HOST"] = emulator.host
            os.environ["DJANGO_SETTINGS_MODULE"] = "emulator.demo.settings"
            os.environ["DEMO_PROJECT"] = f"demo-{os.getpid()}"
            os.environ["PYTHONPATH"] = os.pathsep.join(
                filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
            )
            print(f"Firestore emulator (official) running at {emulator.host}")
            return run_demo()
    except (EmulatorNotFound, EmulatorFailed) as exc:
        print(exc, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
