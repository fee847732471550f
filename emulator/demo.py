"""The README's first command: a lifecycle demo on the official Firestore emulator.

    uv run python -m emulator.demo

Starts the emulator for you, enqueues a few executions, runs them through the store's
lease protocol (claim, heartbeat, finish, retry, cancel) and prints what happened.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta

from emulator.firestore import EmulatorFailed, EmulatorNotFound, FirestoreEmulator


def run() -> int:
    from django_tasks_fs.exceptions import ClaimRefused
    from django_tasks_fs.store import (
        ErrorEntry,
        ExecutionStore,
        StoreSettings,
        TaskExecution,
        new_execution_id,
    )

    store = ExecutionStore(StoreSettings(project="demo-project", collection_prefix="demo_"))
    lease_time = timedelta(seconds=30)

    def enqueue(task_path: str, **extra: object) -> TaskExecution:
        now = store.clock.now()
        return store.create(
            TaskExecution(
                id=new_execution_id(),
                task_path=task_path,
                backend="default",
                queue_name="default",
                enqueued_at=now,
                run_after=now,
                **extra,  # type: ignore[arg-type]
            )
        )

    ok = enqueue("demo.tasks.add", args=[2, 3])
    flaky = enqueue("demo.tasks.flaky", max_attempts=2)
    cancelled = enqueue("demo.tasks.never_runs")

    lease = store.claim(ok.id, worker_id="demo-worker", lease_duration=lease_time)
    lease = store.renew(lease, lease_duration=lease_time)
    store.succeed(lease, 5)

    error = ErrorEntry(exception_class_path="builtins.ValueError", traceback="ValueError: flaky\n")
    for _ in range(2):
        lease = store.claim(flaky.id, worker_id="demo-worker", lease_duration=lease_time)
        store.fail(lease, error, retryable=True)

    store.cancel(cancelled.id)
    try:
        store.claim(cancelled.id, worker_id="demo-worker", lease_duration=lease_time)
    except ClaimRefused as refusal:
        print(f"claim of the cancelled execution refused: {refusal.reason}")

    print(f"\n{'task':<24} {'status':<11} {'attempts':>8}  result / last error")
    for execution in store.page().items[::-1]:
        outcome = (
            repr(execution.return_value)
            if execution.status == "SUCCESSFUL"
            else (execution.errors[-1].exception_class_path if execution.errors else "")
        )
        print(
            f"{execution.task_path:<24} {execution.status:<11} {execution.attempts:>8}  {outcome}"
        )
    return 0


def main() -> int:
    try:
        with FirestoreEmulator() as emulator:
            os.environ["FIRESTORE_EMULATOR_HOST"] = emulator.host
            print(f"Firestore emulator running at {emulator.host}")
            return run()
    except (EmulatorNotFound, EmulatorFailed) as exc:
        print(exc, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
