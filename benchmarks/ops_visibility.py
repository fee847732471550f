"""Operations-visibility cost: Firestore operations of a /metrics scrape, a /healthz
probe and ``manage.py tasks_check``, empty store vs 50,000 executions.

    uv run python benchmarks/ops_visibility.py --sizes 0,50000 --markdown

One official Firestore emulator (``--store memory``: this process's memory instead),
one project per size, loaded as ``benchmarks/admin_cost.py`` loads it (commits of 500;
1/6 of the executions READY and due, 5 queues). With the library's operation
accounting on in-process (``enable_counting()``), it measures: what the worker's
``/metrics`` and ``/healthz`` answers cost (``Worker.metrics_text()`` and
``Worker.health.verdict()``, what the HTTP handler calls, on a worker built for the
project but not started), and ``tasks_check`` with several thresholds, each run as a
new process would run it (its store's server clock not synced yet). Each
measurement is repeated ``--repeat`` times and must count the same. Raw record:
``benchmarks/results/ops-visibility-<timestamp>.json`` (git-ignored).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
COLUMNS = ("queries", "reads", "billed_reads")


def checks() -> dict[str, list[str]]:
    """The tasks_check command lines measured (after ``--backend default``)."""
    return {
        "tasks_check --max-age 300": ["--max-age", "300"],
        "tasks_check --max-backlog 1000 --max-age 300": ["--max-backlog", "1000", "--max-age", "300"],
        "tasks_check --max-backlog 10000": ["--max-backlog", "10000"],
        "tasks_check --max-backlog 1000 --queue emails": ["--max-backlog", "1000", "--queue", "emails"],
    }  # fmt: skip


def measure(
    counts: Any, action: Callable[[], object], repeat: int, fresh: Any = None
) -> dict[str, Any]:
    """Counts of ``action`` (each repeat must count the same), median time. ``fresh``: a
    store whose server clock is forgotten before each repeat, as in a new process (a
    cron run of tasks_check learns Firestore's time with 1 read)."""
    seen, times = [], []
    for _ in range(repeat):
        if fresh is not None:
            fresh.clock._learned_at = None
            fresh.clock._next_try = 0.0
        counts.reset()
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
        seen.append(counts.as_dict())
    assert all(s == seen[0] for s in seen), seen
    return {**{k: seen[0][k] for k in COLUMNS}, "ms": statistics.median(times) * 1000}


def run_check(args: list[str]) -> int:
    from django.core.management import call_command

    try:
        call_command("tasks_check", "--backend", "default", *args, stdout=io.StringIO())
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def markdown(sizes: list[int], results: dict[int, dict[str, dict[str, Any]]]) -> str:
    heads = " / ".join(f"{s:,}" for s in sizes)
    lines = [
        f"| what | queries ({heads}) | documents read | billed reads | exit | ms (median) |",
        "|---|---|---|---|---|---|",
    ]
    for name in results[sizes[0]]:

        def cell(key: str, fmt: Callable[[Any], str] = str, name: str = name) -> str:
            return " / ".join(fmt(results[s][name].get(key, "-")) for s in sizes)

        lines.append(
            f"| `{name}` | {cell('queries')} | {cell('reads')} | {cell('billed_reads')} "
            f"| {cell('exit')} | {cell('ms', lambda v: f'{v:.0f}')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--sizes", default="0,50000", help="executions per project")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--store", choices=("firestore", "memory"), default="firestore")
    parser.add_argument("--timeout", type=float, default=300.0, help="Firestore timeout (s)")
    parser.add_argument("--markdown", action="store_true", help="print the Markdown table")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]

    from benchmarks.records import machine_info, results_path, write_json

    machine = machine_info()  # before the run (its load average)
    with ExitStack() as stack:
        if args.store == "firestore":
            from django_tasks_fs.emulators.firestore import FirestoreEmulator

            emulator = stack.enter_context(FirestoreEmulator())
            os.environ["FIRESTORE_EMULATOR_HOST"] = emulator.host
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
        import django

        django.setup()
        from django.tasks import task_backends
        from django.test import override_settings

        from benchmarks.admin_cost import load
        from django_tasks_fs.store.ops.counting import enable_counting
        from django_tasks_fs.worker import loop
        from django_tasks_fs.worker.loop import Worker, WorkerSettings
        from tests.settings import tasks_setting

        # override_settings hides the settings module the worker checks for its children
        # (none is started here).
        loop.settings_module = lambda: os.environ["DJANGO_SETTINGS_MODULE"]  # type: ignore[assignment]
        counts = enable_counting()
        results: dict[int, dict[str, dict[str, Any]]] = {}
        loads: dict[int, float] = {}
        for size in sizes:
            project = f"bench-ops-{size}-{uuid.uuid4().hex[:6]}"
            tasks = tasks_setting(project, store=args.store)
            for backend in tasks.values():
                backend["OPTIONS"]["firestore_timeout_seconds"] = args.timeout
            with override_settings(TASKS=tasks):
                backend = task_backends["default"]
                loads[size], _ = load(backend.executions, size)  # type: ignore[attr-defined]
                print(f"{size:,} executions loaded in {loads[size]:.1f} s", flush=True)
                worker = Worker(WorkerSettings(backends=[backend]))  # type: ignore[list-item]
                found = {
                    "/metrics scrape": measure(counts, worker.metrics_text, args.repeat),
                    "/healthz probe": measure(counts, worker.health.verdict, args.repeat),
                }
                for name, check_args in checks().items():
                    found[name] = measure(
                        counts,
                        lambda a=check_args: run_check(a),
                        args.repeat,
                        fresh=backend.executions,  # type: ignore[attr-defined]
                    )
                    found[name]["exit"] = run_check(check_args)
                results[size] = found
            for name, row in found.items():
                print(f"  {name}: " + ", ".join(f"{k} {row[k]}" for k in COLUMNS), flush=True)

    record = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "store": args.store,
        "repeat": args.repeat,
        "load_seconds": loads,
        "results": results,
    }
    path = results_path("ops-visibility", ".json")
    write_json(path, record)
    print(f"record: {path.relative_to(ROOT)}")
    if args.markdown:
        print(markdown(sizes, results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
