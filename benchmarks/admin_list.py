"""Admin list benchmark: the executions list with 100,000 executions vs an empty store.

    uv run python benchmarks/admin_list.py --executions 100000 --repeat 5 --markdown

One official Firestore emulator, two projects: an empty one and one loaded with N
executions (batched writes, 500 documents per commit, mixed statuses / queues / tasks).
For each project the admin list page (``/admin/django_tasks_fs/taskexecution/``, first
page, 100 rows, with the per-status counts) and a filtered page (``?status=FAILED&
queue=emails``) are rendered through Django's test client as a superuser; each is
requested once to warm up, then ``--repeat`` times, and the median is reported.
The target: the loaded store within 1.5x of the empty one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BATCH = 500
PAGES = {
    "first page": "/admin/django_tasks_fs/taskexecution/",
    "filtered page": "/admin/django_tasks_fs/taskexecution/?status=FAILED&queue=emails",
}
STATUSES = ["SUCCESSFUL", "SUCCESSFUL", "SUCCESSFUL", "FAILED", "READY", "RUNNING"]
QUEUES = ["default", "default", "emails"]
TASKS = ["tests.tasks.noop", "tests.tasks.echo", "tests.tasks.failing"]


def load(project: str, count: int) -> float:
    """Write ``count`` executions to ``project`` in batches of 500; return the seconds taken."""
    from django_tasks_fs.store import StoreSettings, TaskExecution, get_client, new_execution_id

    settings = StoreSettings(project=project, collection_prefix="t_")
    client = get_client(settings)
    collection = client.collection(settings.executions_collection)
    start = time.perf_counter()
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for first in range(0, count, BATCH):
        batch = client.batch()
        for i in range(first, min(first + BATCH, count)):
            at = base + timedelta(seconds=i)
            execution = TaskExecution(
                id=new_execution_id(),
                task_path=TASKS[i % len(TASKS)],
                backend="default",
                queue_name=QUEUES[i % len(QUEUES)],
                status=STATUSES[i % len(STATUSES)],  # type: ignore[arg-type]
                enqueued_at=at,
                run_after=at,
                args=[i],
            )
            batch.set(collection.document(execution.id), execution.to_document())
        batch.commit()
    return time.perf_counter() - start


def measure(client: Any, url: str, repeat: int) -> list[float]:
    client.get(url)  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - start)
        assert response.status_code == 200, response.status_code
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--executions", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--markdown", action="store_true", help="print the Markdown table")
    args = parser.parse_args(argv)

    from django_tasks_fs.emulators.firestore import FirestoreEmulator

    with FirestoreEmulator() as emulator:
        os.environ["FIRESTORE_EMULATOR_HOST"] = emulator.host
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
        import django
        from django.test.utils import setup_test_environment

        django.setup()
        setup_test_environment()
        from django.contrib.auth.models import User
        from django.core.management import call_command
        from django.tasks import task_backends
        from django.test import Client, override_settings

        from tests.settings import tasks_setting

        call_command("migrate", verbosity=0)
        user = User.objects.create_superuser("bench", "b@example.com", "pw")
        client = Client()
        client.force_login(user)
        load_s = load("bench-full", args.executions)
        print(f"loaded {args.executions} executions in {load_s:.1f} s", flush=True)
        results: dict[str, dict[str, list[float]]] = {}
        for label, project in (("empty", "bench-empty"), ("loaded", "bench-full")):
            with override_settings(TASKS=tasks_setting(project)):
                results[label] = {
                    page: measure(client, url, args.repeat) for page, url in PAGES.items()
                }
                count = task_backends["default"].executions.count()  # type: ignore[attr-defined]
            print(f"{label}: {count} executions", flush=True)
            for page, times in results[label].items():
                print(f"  {page}: median {statistics.median(times) * 1000:.0f} ms", flush=True)
    summary = {
        page: {
            "empty_ms": statistics.median(results["empty"][page]) * 1000,
            "loaded_ms": statistics.median(results["loaded"][page]) * 1000,
        }
        for page in PAGES
    }
    for row in summary.values():
        row["ratio"] = row["loaded_ms"] / row["empty_ms"]
    record = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "executions": args.executions,
        "repeat": args.repeat,
        "load_s": load_s,
        "runs": results,
        "summary": summary,
    }
    print(json.dumps(record["summary"], indent=2))
    if args.markdown:
        lines = [
            f"| page | empty store (ms) | {args.executions:,} executions (ms) | ratio |",
            "|---|---|---|---|",
        ]
        for page, row in summary.items():
            lines.append(
                f"| {page} | {row['empty_ms']:.0f} | {row['loaded_ms']:.0f} | {row['ratio']:.2f}x |"
            )
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
