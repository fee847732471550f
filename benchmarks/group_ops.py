"""Task groups: the Firestore operations a group adds, per member and per group.

    uv run python benchmarks/group_ops.py --members 100 --threads 20

On the official Firestore emulator (started here), in one process: enqueue N ``noop``
calls with ``enqueue_many`` and run each attempt (the anchor), then the same N calls
as one group with an ``on_complete`` and an ``on_success`` callback, the members run
by ``--threads`` threads at once (so the last ones finish together and race to
complete the group), then the callbacks. Counted by store.ops.counting; prints one
JSON line: the operations of each phase, and the group's extra per member. Then the
design not taken, for comparison: N compare-and-set increments of one counter on one
document, ``--threads`` at once (its conflicts and seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def run_all(backend: Any, ids: list[str], threads: int) -> None:
    from django_tasks_fs.execution.attempt import Attempt

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda i: Attempt(backend, i, worker_id="bench").run(), ids))


def cas_counter(backend: Any, members: int, threads: int) -> dict[str, Any]:
    """The design not taken: each finishing member increments one counter on the group
    document by compare-and-set, ``threads`` at once. Its conflicts and time."""
    import time

    from django_tasks_fs.store.cas import compare_and_set
    from django_tasks_fs.store.ops.counting import process_counts

    ops, collection = backend.groups.documents, backend.groups.collection_name
    ops.create(collection, "counter", {"finished": 0})

    def read() -> tuple[int, Any]:
        snapshot = ops.get(collection, "counter")
        assert snapshot.data is not None
        return snapshot.data["finished"], (snapshot.update_time, snapshot.read_time)

    def increment(_: int) -> None:
        state: dict[str, Any] = {}

        def read_versioned() -> tuple[int, Any]:
            value, (update_time, read_time) = read()
            state["update_time"] = update_time
            return value, read_time

        def write(before: int, after: int) -> int:
            ops.update(
                collection, "counter", {"finished": after}, last_update_time=state["update_time"]
            )
            return after

        compare_and_set(
            read=read_versioned,
            decide=lambda value, now: (value + 1, None),
            write=write,
            now=backend.groups.clock.now,
            subject="the group counter",
        )

    counts = process_counts()
    counts.reset()
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(increment, range(members)))
    elapsed = time.perf_counter() - started
    return {
        "final": read()[0],
        "seconds": round(elapsed, 2),
        **{k: v for k, v in counts.as_dict().items() if k in ("writes", "reads", "conflicts")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--threads", type=int, default=20)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.tasks import task_backends
    from django.test.utils import override_settings

    from django_tasks_fs import enqueue_group, enqueue_many
    from django_tasks_fs.emulators.firestore import FirestoreEmulator
    from django_tasks_fs.store.ops.counting import enable_counting
    from tests import tasks
    from tests.settings import tasks_setting

    n, threads = args.members, args.threads
    log = Path(tempfile.mkdtemp()) / "emulator.log"
    with FirestoreEmulator(log_path=log) as emulator:
        os.environ["FIRESTORE_EMULATOR_HOST"] = emulator.host
        counts = enable_counting()
        override_settings(TASKS=tasks_setting(f"bench-{uuid.uuid4().hex[:8]}")).enable()
        backend: Any = task_backends["default"]
        backend.executions.clock.now()
        backend.groups.clock.now()
        phases: dict[str, dict[str, int]] = {}

        def phase(name: str, action: Any) -> Any:
            counts.reset()
            value = action()
            phases[name] = counts.as_dict()
            return value

        calls = [((), {})] * n
        plain = phase("enqueue_many", lambda: enqueue_many(tasks.noop, calls))
        phase("run plain", lambda: run_all(backend, [r.id for r in plain], threads))
        callback = (tasks.record_group, [str(log.parent / "callbacks.txt"), "x"], {})
        group = phase(
            "enqueue_group",
            lambda: enqueue_group(tasks.noop, calls, on_complete=callback, on_success=callback),
        )
        phase("run members", lambda: run_all(backend, [m.id for m in group.members], threads))
        done = backend.groups.get(group.id)
        phase("run callbacks", lambda: run_all(backend, done.callback_ids, 2))
        alternative = cas_counter(backend, n, threads)
    extra = {
        key: (phases["enqueue_group"][key] + phases["run members"][key])
        - (phases["enqueue_many"][key] + phases["run plain"][key])
        for key in phases["run plain"]
    }
    print(
        json.dumps(
            {
                "members": n,
                "threads": threads,
                "status": str(done.status),
                "phases": phases,
                "group_extra_total": extra,
                "group_extra_per_member": {k: round(v / n, 3) for k, v in extra.items()},
                "cas_counter_alternative": alternative,
            }
        )
    )


if __name__ == "__main__":
    main()
