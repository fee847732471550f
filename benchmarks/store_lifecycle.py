"""Store lifecycle benchmark: create + claim + succeed, N times, on each document store.

    uv run python benchmarks/store_lifecycle.py --executions 1000

Runs the same ExecutionStore calls (one process, one thread) on the in-memory store and
on the official Firestore emulator (started here, a fresh project), and prints the
seconds each took and the rate.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from django_tasks_fs.emulators.firestore import FirestoreEmulator
from django_tasks_fs.store import ExecutionStore, StoreSettings, TaskExecution, new_execution_id

LEASE = timedelta(seconds=60)


def lifecycle(store: ExecutionStore, count: int) -> float:
    """Seconds for ``count`` create + claim + succeed."""
    store.clock.now()  # the one read of the server's time, outside the timing
    started = time.perf_counter()
    for _ in range(count):
        now = store.clock.now()
        execution = store.create(
            TaskExecution(
                id=new_execution_id(),
                task_path="tests.tasks.noop",
                backend="default",
                queue_name="default",
                enqueued_at=now,
                run_after=now,
            )
        )
        lease = store.claim(execution.id, worker_id="bench", lease_duration=LEASE, known=execution)
        store.succeed(lease, None)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=1000)
    count = parser.parse_args().executions
    project = f"bench-{uuid.uuid4().hex[:8]}"
    results = {
        "memory": lifecycle(ExecutionStore(StoreSettings(project=project, store="memory")), count)
    }
    log = Path(tempfile.mkdtemp()) / "emulator.log"
    emulator = FirestoreEmulator(log_path=log).start()
    try:
        os.environ["FIRESTORE_EMULATOR_HOST"] = emulator.host
        results["emulator"] = lifecycle(ExecutionStore(StoreSettings(project=project)), count)
    finally:
        emulator.stop()
    for name, seconds in results.items():
        print(
            f"{name:8} {count} x create+claim+succeed: {seconds:6.2f}s ({count / seconds:,.0f}/s)"
        )


if __name__ == "__main__":
    main()
