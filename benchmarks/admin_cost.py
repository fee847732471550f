"""Admin cost benchmark: Firestore operations per admin page, empty store vs 50,000 executions.

    uv run python benchmarks/admin_cost.py --sizes 0,250,50000 --markdown
    uv run python benchmarks/admin_cost.py --sizes 0,50000 --pages dashboard --markdown

One official Firestore emulator (``--store memory``: this process's memory instead),
one project per size, each loaded with that many executions (batched commits of 500
documents, mixed statuses / queues / tasks). For each project, the executions admin
is rendered through Django's test client as a superuser, with the library's operation
accounting on (``enable_counting()``): the first page, the next page (the first
page's cursor), a filtered page (``?status=FAILED&queue=emails``), a search by task
path, a search by execution id, the detail page, and for comparison the first page
with exact counts (``count_limit = None``, the admin before counts were capped).
``--pages dashboard`` (or ``list,dashboard``): the task dashboard of backend
``default`` (2 queues), of every backend, and of ``default`` with exact counts.
The executions are recent (the newest enqueued 10 s before the run, one a second
before that): finished ones within the last hours, half of the RUNNING ones with an
expired lease, half of the READY ones PENDING dispatch.

Reported per page and size: queries (count aggregations included), documents read
(count aggregations at 1 read per 1,000 index entries), billed reads (plus 1 per
query returning nothing), rows shown, and the median wall time of ``--repeat``
requests. The target: queries equal at every size; documents read at most the page
size plus a small constant. Raw record: ``benchmarks/results/admin-cost-<timestamp>.json``
(git-ignored).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BATCH = 500
LIST = "/admin/django_tasks_fs/taskexecution/"
DASHBOARD = LIST + "dashboard/"
STATUSES = ["SUCCESSFUL", "SUCCESSFUL", "SUCCESSFUL", "FAILED", "READY", "RUNNING"]
QUEUES = ["default", "default", "default", "emails", "reports"]  # 5: coprime with 6
TASKS = ["tests.tasks.noop", "tests.tasks.echo", "tests.tasks.failing", "tests.tasks.permanent"]
COLUMNS = ("queries", "reads", "billed_reads", "rows")


def load(store: Any, count: int) -> tuple[float, str | None]:
    """Write ``count`` executions in commits of 500; (seconds taken, newest id)."""
    from django_tasks_fs.store import DispatchState, TaskExecution, new_execution_id
    from django_tasks_fs.store.ops import Create

    start = time.perf_counter()
    now = store.clock.now()
    base = now - timedelta(seconds=count + 10)
    newest = None
    for first in range(0, count, BATCH):
        writes = []
        for i in range(first, min(first + BATCH, count)):
            at = base + timedelta(seconds=i)
            status = STATUSES[i % len(STATUSES)]
            fields: dict[str, Any] = {}  # what the dashboard reads
            if status in ("SUCCESSFUL", "FAILED"):
                end = at + timedelta(seconds=0.5 + i % 7)
                fields = {"started_at": at, "last_attempted_at": at, "finished_at": end}
            elif status == "RUNNING":
                lease = timedelta(minutes=-1 if i // 6 % 2 else 5)
                fields = {"started_at": at, "lease_owner": "w:1", "lease_expires_at": now + lease}
            elif i // 6 % 2:
                fields = {"dispatch_state": DispatchState.PENDING}
            execution = TaskExecution(
                id=new_execution_id(),
                task_path=TASKS[i % len(TASKS)],
                backend="default",
                queue_name=QUEUES[i % len(QUEUES)],
                status=status,  # type: ignore[arg-type]
                enqueued_at=at,
                run_after=at,
                args=[i],
                **fields,
            )
            writes.append(Create(store.collection_name, execution.id, execution.to_document()))
            newest = execution.id
        store.documents.commit(writes)
    return time.perf_counter() - start, newest


@contextmanager
def exact_counts() -> Iterator[None]:
    from django_tasks_fs.admin.executions import TaskExecutionAdmin

    saved = TaskExecutionAdmin.count_limit
    TaskExecutionAdmin.count_limit = None
    try:
        yield
    finally:
        TaskExecutionAdmin.count_limit = saved


def measure(client: Any, counts: Any, url: str, repeat: int) -> dict[str, Any]:
    """Counts of one request of ``url`` (each repeat must count the same), median time."""
    seen, times, response = [], [], None
    for _ in range(repeat):
        counts.reset()
        start = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - start)
        assert response.status_code == 200, (url, response.status_code)
        seen.append(counts.as_dict())
    assert all(s == seen[0] for s in seen), (url, seen)
    assert response is not None
    rows = len(response.context["rows"]) if "rows" in response.context else 1
    if "backends" in response.context:  # the dashboard: the documents it shows
        rows = 0
        for backend in response.context["backends"]:
            figures = backend["figures"]
            rows += len(figures.stuck_items) + len(figures.pending_items)
            rows += sum(q.sampled + (q.oldest is not None) for q in figures.queues)
    return {
        **{k: seen[0][k] for k in ("queries", "reads", "billed_reads", "writes")},
        "rows": rows,
        "ms": statistics.median(times) * 1000,
        "next_url": response.context.get("next_url"),
    }


def dashboard_pages(client: Any, counts: Any, repeat: int) -> dict[str, dict[str, Any]]:
    """The task dashboard over the current project."""

    from django_tasks_fs.registry import firestore_backends

    for backend in firestore_backends().values():
        backend.executions.clock.now()  # each store reads the server's clock once, first

    def get(url: str) -> dict[str, Any]:
        return measure(client, counts, url, repeat)

    found = {"dashboard, backend default (2 queues)": get(DASHBOARD + "?backend=default")}
    found["dashboard, all 5 backends"] = get(DASHBOARD)
    with exact_counts():
        found["dashboard, backend default, exact counts"] = get(DASHBOARD + "?backend=default")
    return found


def pages(client: Any, counts: Any, newest: str | None, repeat: int) -> dict[str, dict[str, Any]]:
    """Each page of the admin over the current project (pages that do not exist: left out)."""

    def get(url: str) -> dict[str, Any]:
        return measure(client, counts, url, repeat)

    found = {"first page": get(LIST)}
    if found["first page"]["next_url"]:
        found["next page (cursor)"] = get(LIST + found["first page"]["next_url"])
    found["filtered page (status + queue)"] = get(LIST + "?status=FAILED&queue=emails")
    found["search by task path"] = get(LIST + "?q=tests.tasks.echo")
    found["search by id"] = get(LIST + f"?q={newest or uuid.uuid4().hex}")
    if newest:
        found["detail"] = get(f"{LIST}default/{newest}/")
    with exact_counts():
        found["first page, exact counts (count_limit=None)"] = get(LIST)
    return found


def markdown(sizes: list[int], results: dict[int, dict[str, dict[str, Any]]]) -> str:
    heads = " / ".join(f"{s:,}" for s in sizes)
    lines = [
        f"| page | queries ({heads}) | documents read | billed reads | rows | ms (median) |",
        "|---|---|---|---|---|---|",
    ]
    names = list(dict.fromkeys(p for size in reversed(sizes) for p in results[size]))
    for page in names:

        def cell(key: str, fmt: Callable[[Any], str] = str, page: str = page) -> str:
            return " / ".join(
                fmt(results[s][page][key]) if page in results[s] else "-" for s in sizes
            )

        lines.append(
            f"| {page} | {cell('queries')} | {cell('reads')} | {cell('billed_reads')} "
            f"| {cell('rows')} | {cell('ms', lambda v: f'{v:.0f}')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--sizes", default="0,250,50000", help="executions per project")
    parser.add_argument("--repeat", type=int, default=3, help="requests per page")
    parser.add_argument("--store", choices=("firestore", "memory"), default="firestore")
    parser.add_argument("--timeout", type=float, default=300.0, help="Firestore timeout (s)")
    parser.add_argument("--markdown", action="store_true", help="print the Markdown table")
    parser.add_argument("--pages", default="list", help="list, dashboard or list,dashboard")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    chosen = set(args.pages.split(","))

    from benchmarks.records import machine_info, results_path, write_json

    machine = machine_info()  # before the run (its load average)
    with ExitStack() as stack:
        if args.store == "firestore":
            from django_tasks_fs.emulators.firestore import FirestoreEmulator

            emulator = stack.enter_context(FirestoreEmulator())
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

        from django_tasks_fs.admin.executions import TaskExecutionAdmin
        from django_tasks_fs.store.ops.counting import enable_counting
        from tests.settings import tasks_setting

        call_command("migrate", verbosity=0)
        user = User.objects.create_superuser("bench", "b@example.com", "pw")
        client = Client()
        client.force_login(user)
        counts = enable_counting()  # before any store is created: every one counts
        results: dict[int, dict[str, dict[str, Any]]] = {}
        loads: dict[int, float] = {}
        for size in sizes:
            project = f"bench-admin-{size}-{uuid.uuid4().hex[:6]}"
            tasks = tasks_setting(project, store=args.store)
            for backend in tasks.values():
                # The emulator scans the collection for every query (no indexes): on a
                # loaded machine a page over 50,000 takes longer than the default 10 s.
                backend["OPTIONS"]["firestore_timeout_seconds"] = args.timeout
            with override_settings(TASKS=tasks):
                store = task_backends["default"].executions  # type: ignore[attr-defined]
                loads[size], newest = load(store, size)
                print(f"{size:,} executions loaded in {loads[size]:.1f} s", flush=True)
                results[size] = {}
                if "list" in chosen:
                    results[size].update(pages(client, counts, newest, args.repeat))
                if "dashboard" in chosen:
                    results[size].update(dashboard_pages(client, counts, args.repeat))
            for page, row in results[size].items():
                print(f"  {page}: " + ", ".join(f"{k} {row[k]}" for k in COLUMNS), flush=True)

    record = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "store": args.store,
        "per_page": TaskExecutionAdmin.list_per_page,
        "count_limit": TaskExecutionAdmin.count_limit,
        "dashboard_sample": TaskExecutionAdmin.dashboard_sample,
        "dashboard_listed": TaskExecutionAdmin.dashboard_listed,
        "repeat": args.repeat,
        "load_seconds": loads,
        "results": {
            size: {p: {k: v for k, v in r.items() if k != "next_url"} for p, r in pages_.items()}
            for size, pages_ in results.items()
        },
    }
    path = results_path("admin-cost", ".json")
    write_json(path, record)
    print(f"record: {path.relative_to(ROOT)}")
    if args.markdown:
        print(markdown(sizes, results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
