"""Drain benchmark: enqueue and drain N no-op tasks, ours against the anchors.

    uv run python benchmarks/drain.py --tasks 500 2000 --repeat 2 --markdown docs/benchmarks.md

Each repeat runs, one after the other so that they see the same machine conditions:

1. **django-tasks-fs**: ``ProcessBackend`` in ``cloud_tasks`` mode, state in the
   official Firestore emulator (one emulator process for the whole benchmark, a fresh
   project id per run, so every run starts from an empty store). ``run_tasks --burst``
   is started once on the empty queue (``idle_run_s``: the worker's start-up cost,
   next to ``floor_s``, the start-up floor of ``benchmarks/startup.py``),
   then N ``noop.enqueue()`` calls are timed in one process, then ``run_tasks --burst``
   is timed from its start until it exits with the queue empty (``drain_s``, worker
   start-up included). Afterwards exactly N executions must exist, all SUCCESSFUL.
2. **the anchors** (``benchmarks/anchors``): django-tasks-db's ``db_worker --batch``,
   django-tasks-google's ``ProcessBackend`` + ``run_tasks``, django-vtasks' database
   backend + ``runworker`` and django-ox's ``ox_worker --batch``, each on a fresh SQLite
   file, measured the same way by ``anchors.runner.run_anchor``.

Every size given to ``--tasks`` runs in every repeat. Once, after the warm-up, the raw
capacity of the emulator is measured with the bare client (``emulator_capacity.py``), so
that the rates of our system also read as a share of what the emulator can take here.

Results go to ``benchmarks/results/drain-<timestamp>.jsonl`` (one JSON object per
line: the machine, every run, the summary); ``--markdown PATH`` also (re)writes the
benchmark page from them. ``--render JSONL --markdown PATH`` rewrites the page from an
earlier results file without running anything.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# benchmarks/ (for anchors and fs_project) and the repository root (for emulator).
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from anchors.runner import ANCHORS, DEFAULT_VENV, AnchorError, ensure_venv, installed_versions
from anchors.runner import run_anchor as _run_anchor
from emulator_capacity import measure as measure_capacity
from records import (
    command_output,
    loadavg,
    machine_info,
    progress,
    results_path,
    timestamp,
    write_jsonl,
)
from startup import floor_run

from django_tasks_fs.emulators.firestore import FirestoreEmulator

BENCHMARKS_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCHMARKS_DIR.parent

#: Key of our system in the records (the anchors use their ANCHORS names).
OURS = "fs"
#: Short labels for tables, in table order.
LABELS = {
    OURS: "django-tasks-fs",
    "tasks_db": "django-tasks-db",
    "tasks_google": "django-tasks-google",
    "tasks_vtasks": "django-vtasks",
    "tasks_ox": "django-ox",
}
#: The anchor our drain rate must at least match (the issue's target).
TARGET_ANCHOR = "tasks_db"
COMMAND_PREFIX = "uv run python benchmarks/drain.py"
#: Tasks of the unrecorded warm-up run of our system on a fresh emulator.
WARMUP_TASKS = 200

#: Run in a child process with DJANGO_SETTINGS_MODULE=fs_project.settings. Only the N
#: enqueue() calls are timed; one count() before them opens the gRPC channel (as the
#: anchors' script opens the SQLite connection before timing).
ENQUEUE_SCRIPT = """
import json, os, time
import django
django.setup()
from fs_project.tasks import noop
n = int(os.environ["BENCH_TASKS"])
noop.get_backend().executions.count()
start = time.perf_counter()
for _ in range(n):
    noop.enqueue()
elapsed = time.perf_counter() - start
print(json.dumps({"enqueued": n, "enqueue_s": elapsed}))
"""

#: Prints the number of executions per status (zeros left out) and the total.
COUNT_SCRIPT = """
import json
import django
django.setup()
from django.tasks import TaskResultStatus, task_backends
from django_tasks_fs.store import ExecutionFilter
store = task_backends["default"].executions
counts = {str(s): store.count(ExecutionFilter(status=s)) for s in TaskResultStatus}
counts = {k: v for k, v in counts.items() if v}
counts["total"] = store.count()
print(json.dumps(counts))
"""


class BenchmarkError(RuntimeError):
    """A run of our system failed or did not end with every task SUCCESSFUL."""


log = progress("drain")


@dataclass(frozen=True, slots=True)
class OurConfig:
    """How our worker is run."""

    workers: int
    batch: int
    timeout: float

    def worker_args(self) -> list[str]:
        """``manage.py``-style arguments of the draining worker (and of the idle run)."""
        return [
            "run_tasks",
            "--burst",
            "--max-workers",
            str(self.workers),
            "--batch-size",
            str(self.batch),
            "-v",
            "0",
        ]


# -- our system ------------------------------------------------------------------------


def _child_env(emulator_host: str, project: str, tasks: int, config: OurConfig) -> dict[str, str]:
    """The environment of our child processes: no inherited Django settings or bytecode ban.

    PYTHONDONTWRITEBYTECODE is dropped as the anchors' runner drops it, so both sides
    cache the bytecode of their project modules alike.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "FIRESTORE_", "BENCH_"))
        and key not in ("PYTHONPATH", "PYTHONHOME", "PYTHONDONTWRITEBYTECODE")
    }
    env.update(
        FIRESTORE_EMULATOR_HOST=emulator_host,
        DJANGO_SETTINGS_MODULE="fs_project.settings",
        PYTHONPATH=os.pathsep.join([str(BENCHMARKS_DIR), str(REPO_ROOT)]),
        BENCH_PROJECT=project,
        BENCH_WORKERS=str(config.workers),
        BENCH_BATCH=str(config.batch),
        BENCH_TASKS=str(tasks),
    )
    return env


def _python(args: Sequence[str], env: dict[str, str], timeout: float) -> str:
    """Run ``python ARGS`` with our interpreter; return stdout or raise BenchmarkError."""
    try:
        result = subprocess.run(
            [sys.executable, *args],
            env=env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BenchmarkError(f"python {shlex.join(args)} still running after {timeout}s") from None
    if result.returncode != 0:
        raise BenchmarkError(
            f"python {shlex.join(args)} exited {result.returncode}:\n"
            f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
        )
    return result.stdout


def _counts(env: dict[str, str]) -> dict[str, int]:
    out = _python(["-c", COUNT_SCRIPT], env, timeout=300)
    counts: dict[str, int] = json.loads(out.strip().splitlines()[-1])
    return counts


def _timed_worker(config: OurConfig, env: dict[str, str], log_path: Path) -> float:
    """Run ``python -m django run_tasks --burst ...`` and return its wall-clock seconds."""
    args = [sys.executable, "-m", "django", *config.worker_args()]
    with log_path.open("w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(args, env=env, cwd=REPO_ROOT, stdout=out, stderr=out)
        try:
            code = proc.wait(timeout=config.timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise BenchmarkError(f"run_tasks still running after {config.timeout}s") from None
        elapsed = time.perf_counter() - start
    if code != 0:
        tail = log_path.read_text(errors="replace")[-4000:]
        raise BenchmarkError(f"run_tasks exited {code}:\n{tail}")
    return elapsed


def run_ours(emulator_host: str, project: str, tasks: int, config: OurConfig) -> dict[str, Any]:
    """One run of django-tasks-fs on an empty emulator project; return its figures."""
    env = _child_env(emulator_host, project, tasks, config)
    workdir = Path(tempfile.mkdtemp(prefix="drain-fs-"))
    try:
        floor = floor_run(emulator_host, project)
        idle_run_s = _timed_worker(config, env, workdir / "idle.log")

        out = _python(["-c", ENQUEUE_SCRIPT], env, timeout=config.timeout)
        enqueue_s = float(json.loads(out.strip().splitlines()[-1])["enqueue_s"])
        counts = _counts(env)
        if counts != {"READY": tasks, "total": tasks}:
            raise BenchmarkError(f"after enqueue expected {tasks} READY, got {counts}")

        drain_s = _timed_worker(config, env, workdir / "worker.log")
        counts = _counts(env)
        if counts != {"SUCCESSFUL": tasks, "total": tasks}:
            raise BenchmarkError(f"after drain expected {tasks} SUCCESSFUL, got {counts}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "key": OURS,
        "system": (
            f"django-tasks-fs ProcessBackend run_tasks --burst max_workers={config.workers} "
            f"batch_size={config.batch} (Firestore emulator)"
        ),
        "tasks": tasks,
        "enqueue_s": round(enqueue_s, 4),
        "enqueue_tasks_per_s": round(tasks / enqueue_s, 1),
        "drain_s": round(drain_s, 4),
        "tasks_per_s": round(tasks / drain_s, 1),
        "idle_run_s": round(idle_run_s, 4),
        "floor_s": round(floor["wall_s"], 4),
        "concurrency": (
            f"1 polling process + up to {config.workers} warm processes (fresh interpreters, "
            "started when work arrives), each claiming chunks "
            f"of executions; batch_size={config.batch}, poll_interval=0.05s, mode=cloud_tasks"
        ),
        "worker_cmd": "python -m django " + shlex.join(config.worker_args()),
        "storage": "Firestore emulator, fresh project id per run",
        "project": project,
        "final_counts": counts,
    }


def run_anchor(name: str, tasks: int, timeout: float) -> dict[str, Any]:
    """One run of an anchor (see benchmarks/anchors); return its figures."""
    record = _run_anchor(name, tasks, timeout=timeout)
    return {"key": name, **record}


# -- summary and page ------------------------------------------------------------------


def _median(values: Iterable[float]) -> float | None:
    items = list(values)
    return statistics.median(items) if items else None


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians per system, ratios of medians, and per-repeat ratios of our drain rate."""
    systems: dict[str, dict[str, Any]] = {}
    for key in LABELS:
        mine = [r for r in runs if r["key"] == key]
        if not mine:
            continue
        systems[key] = {
            "system": mine[0]["system"],
            "runs": len(mine),
            "enqueue_tasks_per_s": _median(r["enqueue_tasks_per_s"] for r in mine),
            "drain_tasks_per_s": _median(r["tasks_per_s"] for r in mine),
            "idle_run_s": _median(r["idle_run_s"] for r in mine if r["idle_run_s"] is not None),
            "floor_s": _median(r["floor_s"] for r in mine if r.get("floor_s") is not None),
        }
    ratios: dict[str, dict[str, float]] = {}
    for key, figures in systems.items():
        ratios[key] = {
            anchor: round(figures["drain_tasks_per_s"] / systems[anchor]["drain_tasks_per_s"], 2)
            for anchor in ANCHORS
            if anchor in systems
        }
    paired: dict[str, list[float]] = {}
    ours = {r["repeat"]: r for r in runs if r["key"] == OURS}
    for run in runs:
        if run["key"] in ANCHORS and run["repeat"] in ours:
            ratio = ours[run["repeat"]]["tasks_per_s"] / run["tasks_per_s"]
            paired.setdefault(run["key"], []).append(round(ratio, 2))
    target = ratios.get(OURS, {}).get(TARGET_ANCHOR)
    return {
        "kind": "summary",
        "systems": systems,
        "drain_ratio_of_medians": ratios,
        "ours_drain_ratio_per_repeat": paired,
        "ours_drain_ratio_median_of_repeats": {k: _median(v) for k, v in paired.items()},
        "target": f"{LABELS[OURS]} drain tasks/s >= {LABELS[TARGET_ANCHOR]} drain tasks/s",
        "target_met": None if target is None else target >= 1.0,
    }


def _fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def summarize_sizes(runs: list[dict[str, Any]], capacity: dict[str, Any] | None) -> dict[str, Any]:
    """One summary per task count, with our start-up ratio and the emulator's capacity."""
    sizes: dict[str, Any] = {}
    for tasks in sorted({r["tasks"] for r in runs}):
        summary = summarize([r for r in runs if r["tasks"] == tasks])
        ours = summary["systems"].get(OURS)
        if ours and ours["floor_s"]:
            ours["startup_ratio_to_floor"] = round(ours["idle_run_s"] / ours["floor_s"], 2)
        if ours and capacity:
            ours["drain_share_of_claim_capacity"] = round(
                ours["drain_tasks_per_s"] / capacity["claims_per_s"], 3
            )
            ours["enqueue_share_of_serial_creates"] = round(
                ours["enqueue_tasks_per_s"] / capacity["serial_creates_per_s"], 3
            )
        sizes[str(tasks)] = summary
    return {"kind": "summary", "sizes": sizes, "emulator_capacity": capacity}


def _results(machine: dict[str, Any], tasks: int, summary: dict[str, Any]) -> list[str]:
    """The results table of one task count."""
    systems: dict[str, dict[str, Any]] = summary["systems"]
    ratios: dict[str, dict[str, float]] = summary["drain_ratio_of_medians"]
    anchor_keys = [k for k in ANCHORS if k in systems]
    lines = [f"### {tasks:,} tasks", ""]
    header = ["system", "runs", "enqueue tasks/s", "drain tasks/s"]
    header += [f"drain ratio vs {LABELS[a]}" for a in anchor_keys]
    header += ["worker start-up (s)"]
    lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for key, figures in systems.items():
        name = f"**{LABELS[key]}**" if key == OURS else LABELS[key]
        row = [
            name,
            str(figures["runs"]),
            _fmt(figures["enqueue_tasks_per_s"]),
            _fmt(figures["drain_tasks_per_s"]),
        ]
        row += [_fmt(ratios[key].get(a), 2) for a in anchor_keys]
        row += [_fmt(figures["idle_run_s"], 2)]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    target = ratios.get(OURS, {}).get(TARGET_ANCHOR)
    if target is not None:
        verdict = "met" if target >= 1.0 else "**not met**"
        lines += [
            f"Target (drain at least as fast as {LABELS[TARGET_ANCHOR]}'s `db_worker` on "
            f"this {machine['nproc']}-core machine): {verdict}, ratio {target:.2f}.",
            "",
        ]
    ours = systems.get(OURS, {})
    if ours.get("startup_ratio_to_floor") is not None:
        lines += [
            f"{LABELS[OURS]}'s start-up is {ours['startup_ratio_to_floor']:.2f}x its floor "
            f"(median {_fmt(ours['idle_run_s'], 2)} s against {_fmt(ours['floor_s'], 2)} s: "
            "Python, `django.setup()` with no app, importing the Firestore client, one "
            "query; `benchmarks/startup.py`).",
            "",
        ]
    if ours.get("drain_share_of_claim_capacity") is not None:
        lines += [
            f"Against the emulator's raw capacity measured in the same run (below): "
            f"{LABELS[OURS]} drains at {ours['drain_share_of_claim_capacity']:.2f}x the "
            "bare client's claim rate, and enqueues at "
            f"{ours['enqueue_share_of_serial_creates']:.2f}x its serial create rate.",
            "",
        ]
    paired = summary["ours_drain_ratio_per_repeat"]
    if paired:
        parts = [
            f"vs {LABELS[k]} {', '.join(f'{r:.2f}' for r in v)} "
            f"(median {summary['ours_drain_ratio_median_of_repeats'][k]:.2f})"
            for k, v in paired.items()
        ]
        lines += [
            f"{LABELS[OURS]}'s drain ratio within each repeat (its run and the anchor's "
            f"run in the same repeat): {'; '.join(parts)}.",
            "",
        ]
    return lines


def _startup_overall(runs: list[dict[str, Any]]) -> list[str]:
    """Our start-up against its floor over every run of every size, and db_worker's."""
    ours = [r for r in runs if r["key"] == OURS and r.get("floor_s")]
    if not ours:
        return []
    ratios = sorted(r["idle_run_s"] / r["floor_s"] for r in ours)
    line = (
        f"Start-up over all {len(ours)} runs of {LABELS[OURS]}: median "
        f"{_fmt(_median(r['idle_run_s'] for r in ours), 2)} s against a floor of "
        f"{_fmt(_median(r['floor_s'] for r in ours), 2)} s, per-run ratio median "
        f"{_fmt(_median(ratios), 2)} (from {ratios[0]:.2f} to {ratios[-1]:.2f})"
    )
    anchor = [r["idle_run_s"] for r in runs if r["key"] == TARGET_ANCHOR and r["idle_run_s"]]
    if anchor:
        line += f"; {LABELS[TARGET_ANCHOR]}'s `db_worker`: median {_fmt(_median(anchor), 2)} s"
    return ["### Worker start-up", "", line + ".", ""]


def render_markdown(
    machine: dict[str, Any], runs: list[dict[str, Any]], summary: dict[str, Any]
) -> str:
    """The benchmark page, from one benchmark run's records."""
    command = machine["command"]
    sizes: dict[str, Any] = summary["sizes"]
    capacity: dict[str, Any] | None = summary.get("emulator_capacity")
    counts = " and ".join(f"{int(n):,}" for n in sizes)
    anchor_repeats = machine.get("anchor_repeats", {})
    anchor_names = ", ".join(LABELS[k] for k in anchor_repeats) or "no anchor"
    lines: list[str] = [
        "# Drain benchmark",
        "",
        f"How fast {LABELS[OURS]} enqueues and drains {counts} no-op tasks with "
        "`run_tasks` (`ProcessBackend`, `cloud_tasks` mode), next to existing Django "
        f"task backends run the same way on SQLite ({anchor_names}). The figures below "
        f"come from **one run of the command below on {machine['date_utc']}** on the "
        "machine described under [Machine](#machine), while other work loaded it (see "
        "[Caveats](#caveats)); running the command again rewrites this page.",
        "",
        "## Command",
        "",
        "```console",
        command,
        "```",
        "",
        "It needs the Firestore emulator and Java (see the README), and `uv` to build the "
        "anchors' separate venv, `benchmarks/.venv-anchors`, on first use (see "
        "`benchmarks/anchors/README.md`). Raw figures "
        f"of this run: `{machine['results_file']}` (git-ignored, not in the repository).",
        "",
        "## Results",
        "",
        "Medians over the runs of each system. A drain ratio is the row's median drain "
        "tasks/s divided by that anchor's median drain tasks/s. Worker start-up is the "
        "median time of one worker run on an empty queue; it is included in every drain "
        "time (— : the worker has no mode that exits on an empty queue).",
        "",
    ]
    for size, size_summary in sizes.items():
        lines += _results(machine, int(size), size_summary)
    lines += _startup_overall(runs)
    if capacity:
        lines += [
            "### The emulator's raw capacity",
            "",
            "Measured once in the same run, after the warm-up, with the bare "
            "`google-cloud-firestore` client and no code of ours "
            "(`benchmarks/emulator_capacity.py`), each on a fresh project id:",
            "",
            "| what | per second |",
            "| --- | --- |",
            f"| serial single-document creates ({capacity['serial_creates']:,}) | "
            f"{_fmt(capacity['serial_creates_per_s'])} |",
            f"| batched creates, 500 per commit ({capacity['batched_writes']:,}) | "
            f"{_fmt(capacity['batched_writes_per_s'])} |",
            f"| claims: query up to {capacity['chunk']} READY documents + one batch of "
            f"conditional updates, until {capacity['claimed']:,} are claimed | "
            f"{_fmt(capacity['claims_per_s'])} documents "
            f"({_fmt(capacity['claim_commits_per_s'])} commits) |",
            "",
        ]
    limited = {k: v for k, v in anchor_repeats.items() if v < machine["repeat"]}
    if limited:
        parts = [
            f"{LABELS[k]} ran in " + ("repeat 1 only" if v == 1 else f"the first {v} repeats only")
            for k, v in limited.items()
        ]
        lines += [
            f"Repeats: {machine['repeat']}; {'; '.join(parts)} "
            "(it drains at a few tasks/s, so each of its runs takes minutes).",
            "",
        ]
    google_max = machine.get("google_max_tasks")
    if google_max is not None and "tasks_google" in anchor_repeats:
        lines += [
            f"{LABELS['tasks_google']} ran only for {google_max:,} tasks or fewer (it drains "
            "at a few tasks/s, so each of its runs takes minutes).",
            "",
        ]
    lines += [
        "## Method",
        "",
        f"One repeat runs {LABELS[OURS]} and then each anchor, one after the other, so "
        "that the runs of a repeat see the same machine conditions; every run starts "
        "from an empty store. For each system a run:",
        "",
        "1. starts the worker once on the empty queue and times it (*worker start-up*: "
        "interpreter start, `django.setup()`, one empty poll, exit); for "
        f"{LABELS[OURS]} the start-up floor script runs just before it;",
        f"2. enqueues N ({counts}) `noop` tasks (a task that returns `None`) in one process, "
        "timing only the `enqueue()` calls after one warm-up round trip to the store "
        "(*enqueue tasks/s*);",
        "3. starts the worker and times it from its start until every task has finished "
        "(*drain tasks/s* = tasks / seconds; worker start-up included);",
        "4. checks that exactly that many tasks exist and all are `SUCCESSFUL` "
        "(django-vtasks deletes a task's row when it succeeds: there, that no row is "
        "left; anything else fails the benchmark).",
        "",
        "| system | store | worker command | concurrency |",
        "| --- | --- | --- | --- |",
    ]
    for key in [k for k in LABELS if any(r["key"] == k for r in runs)]:
        sample = next(r for r in runs if r["key"] == key)
        lines.append(
            f"| {LABELS[key]} | {sample['storage']} | `{sample['worker_cmd']}` | "
            f"{sample['concurrency']} |"
        )
    lines += [
        "",
        f"- {LABELS[OURS]}: one Firestore emulator process serves every run of the "
        f"benchmark, each run on a fresh project id. Before repeat 1, one run of "
        f"{WARMUP_TASKS} tasks (not counted) warms the emulator, a JVM that answers its "
        "first requests slowly. `run_tasks --burst` exits once nothing is ready or "
        "running, so the drain time is the worker process's lifetime. Each `enqueue()` "
        "creates one Firestore document (one request). The worker and enqueue processes "
        "are started with `python -m django` and `DJANGO_SETTINGS_MODULE=fs_project.settings` "
        "(`benchmarks/fs_project/`).",
        "- django-tasks-db: `db_worker --batch` exits when the queue is empty, so the "
        "drain time is the process's lifetime.",
        "- django-tasks-google: `run_tasks` never exits on its own, so the runner reads "
        "the statuses from SQLite every 20 ms, stops the clock when all tasks have "
        "finished, then stops the worker. Its poll interval is 0.05 s instead of its "
        "default 1.0 s, in its favour.",
        "- django-vtasks: `runworker` never exits on its own either; the runner stops the "
        "clock when no row is left. Its database mode keeps no result (a finished task's "
        "row is deleted): less work per task than the other systems, which record one.",
        "- django-ox: `ox_worker --batch` exits once a poll pass finds nothing to claim, "
        "so the drain time is the process's lifetime.",
        "- Every anchor uses SQLite with WAL, `transaction_mode=IMMEDIATE` and a 30 s busy "
        "timeout, from PyPI in their own venv "
        "(`benchmarks/anchors/requirements.txt`).",
        "",
        "## Individual runs",
        "",
        "| repeat | tasks | system | enqueue s | enqueue tasks/s | drain s | drain tasks/s "
        "| worker start-up s | start-up floor s | load avg (1 min) before |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        load = run.get("loadavg_before") or []
        lines.append(
            f"| {run['repeat']} | {run['tasks']:,} | {LABELS[run['key']]} | "
            f"{_fmt(run['enqueue_s'], 2)} | "
            f"{_fmt(run['enqueue_tasks_per_s'])} | {_fmt(run['drain_s'], 2)} | "
            f"{_fmt(run['tasks_per_s'])} | {_fmt(run['idle_run_s'], 2)} | "
            f"{_fmt(run.get('floor_s'), 2)} | "
            f"{_fmt(load[0], 2) if load else '—'} |"
        )
    loads = [run["loadavg_before"][0] for run in runs if run.get("loadavg_before")]
    ours_versions = machine["ours"]
    anchors_versions = machine.get("anchors", {})
    lines += [
        "",
        "## Machine",
        "",
        f"- {machine['nproc']} CPUs available to the benchmark ({machine['cpu']}), "
        f"{_fmt(machine['memory_gib'])} GiB memory, {machine['os']}; load average "
        f"{' / '.join(f'{x:.2f}' for x in machine['loadavg_start'])} (1 / 5 / 15 min) "
        "at the start.",
        f"- {LABELS[OURS]} {ours_versions['django-tasks-fs']} at commit "
        f"`{machine['git_commit']}`"
        + (
            f" (with uncommitted changes to {machine['git_modified_tracked_files']} tracked files)"
            if machine["git_modified_tracked_files"]
            else ""
        )
        + f": Python {ours_versions['python']}, Django {ours_versions['django']}, "
        f"google-cloud-firestore {ours_versions['google-cloud-firestore']}, grpcio "
        f"{ours_versions['grpcio']}, protobuf {ours_versions['protobuf']}.",
        f"- Firestore emulator {machine['firestore_emulator']} (gcloud component), "
        f"{machine['java']}.",
    ]
    if anchors_versions:
        lines.append(
            f"- Anchors' venv: Python {anchors_versions.get('python')}, "
            + ", ".join(
                f"{'Django' if name == 'django' else name} {version}"
                for name, version in anchors_versions.items()
                if name != "python"
            )
            + f", SQLite {machine.get('sqlite', '?')}."
        )
    lines += [
        "",
        "## Caveats",
        "",
        f"- The machine has {machine['nproc']} cores and is shared: other work (other "
        "test runs, other emulators) may have run at the same time. The load average "
        "before each run is in the table above; the repeats are interleaved so that a "
        "busy spell hits all systems of a repeat alike, but single figures can still be "
        "off."
        + (
            f" During this run it ranged from {min(loads):.2f} to {max(loads):.2f} "
            f"on {machine['nproc']} cores."
            if loads
            else ""
        ),
        "- The Firestore emulator is not Firestore. It runs on the same machine, on the "
        "same cores as the worker (its CPU use counts against ours), over loopback, in "
        "memory, without the network round trips (typically milliseconds per request "
        "from the same region), quotas, or contention limits of the real service. "
        "These figures say nothing about throughput against real Firestore; the anchors' "
        "SQLite file is likewise local.",
        "- django-tasks-db's `db_worker` runs one task at a time in one process; more "
        "throughput would need more worker processes, which SQLite's single writer "
        "limits. Ours runs with "
        f"`--max-workers {machine['workers']}` on this {machine['nproc']}-core machine.",
        "- django-tasks-google's `run_tasks` spawns a fresh interpreter and runs "
        "`django.setup()` for every task (about 0.3-0.45 s of CPU each on this machine, "
        "see benchmarks/anchors/README.md), which caps it at a few tasks/s on 2 cores "
        "whatever the task does.",
        "- Bytecode: this machine's shell sets `PYTHONDONTWRITEBYTECODE=1`. Both our venv "
        "(`compile-bytecode = true` in `pyproject.toml`) and the anchors' venv "
        "(`uv pip install --compile-bytecode`) hold precompiled bytecode for their "
        "installed packages, and the benchmark removes `PYTHONDONTWRITEBYTECODE` from "
        "the environment of every process it starts (ours and the anchors'), so project "
        "modules are compiled once and then cached on both sides.",
        "- The emulator's raw capacity is that of one client doing one thing at a time "
        "(serial creates, or one query + commit after another), on the same loaded "
        f"machine; {LABELS[OURS]} runs a polling process and warm processes side by side, "
        "so its ratio to the claim rate can pass 1. The SQLite anchors pay no network "
        "round trip and no second process for their store: they are bounded by the "
        "machine's CPU, ours also by the emulator's (a JVM on the same 2 cores).",
        "- Start-up: the floor is measured before each of our empty-queue runs, in the "
        "same conditions; on this loaded machine single start-up figures vary by "
        "several times (see the individual runs), so read the medians.",
        "- A no-op task measures the framework's cost per task (claiming, recording the "
        "result, process hand-offs), not the work a real task does.",
        "",
    ]
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------


#: Where the page's section written by benchmarks/operations.py starts: kept on a rewrite.
KEPT_SECTION = "\n## Firestore operations per task"


def write_page(path: Path, page: str) -> None:
    """Write the drain page to ``path``, keeping the operations section already there."""
    try:
        existing = path.read_text()
    except FileNotFoundError:
        existing = ""
    start = existing.find(KEPT_SECTION)
    path.write_text(page + (existing[start:] if start >= 0 else ""))


def _read_jsonl(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    machine = next(r for r in records if r.get("kind") == "machine")
    runs = [r for r in records if r.get("kind") == "run"]
    return machine, runs


def _sqlite_version(anchor_python: Path | None) -> str:
    python = str(anchor_python) if anchor_python else sys.executable
    out = command_output([python, "-c", "import sqlite3; print(sqlite3.sqlite_version)"])
    return out.splitlines()[-1] if out else "unknown"


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the benchmark, write the results (and the page)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--tasks",
        type=int,
        nargs="+",
        default=[2000],
        help="tasks per run; several sizes run in every repeat (default 2000)",
    )
    parser.add_argument(
        "--no-capacity", action="store_true", help="skip the emulator's raw-capacity probe"
    )
    parser.add_argument("--repeat", type=int, default=3, help="repeats (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="our max_workers (default 2)")
    parser.add_argument("--batch", type=int, default=100, help="our batch_size (default 100)")
    parser.add_argument(
        "--anchor",
        action="append",
        choices=sorted(ANCHORS),
        help="anchor to run; repeatable (default: all)",
    )
    parser.add_argument("--skip-anchors", action="store_true", help="run only our system")
    parser.add_argument(
        "--anchor-repeat-google",
        type=int,
        default=None,
        metavar="N",
        help="run the tasks_google anchor in the first N repeats only (default: every repeat)",
    )
    parser.add_argument(
        "--google-max-tasks",
        type=int,
        default=None,
        metavar="N",
        help="run the tasks_google anchor only for task counts up to N (default: all)",
    )
    parser.add_argument("--markdown", type=Path, help="(re)write this page from the results")
    parser.add_argument(
        "--render", type=Path, metavar="JSONL", help="only rewrite --markdown from this file"
    )
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per phase")
    args = parser.parse_args(argv)

    if args.render:
        if not args.markdown:
            parser.error("--render needs --markdown")
        saved_machine, saved_runs = _read_jsonl(args.render)
        saved_capacity = saved_machine.get("emulator_capacity")
        page = render_markdown(
            saved_machine, saved_runs, summarize_sizes(saved_runs, saved_capacity)
        )
        write_page(args.markdown, page)
        log(f"wrote {args.markdown} from {args.render}")
        return 0
    if min(args.tasks) < 1 or args.repeat < 1 or args.workers < 1 or args.batch < 1:
        parser.error("--tasks, --repeat, --workers and --batch must be at least 1")

    anchors = [] if args.skip_anchors else (args.anchor or list(ANCHORS))
    anchor_repeats = dict.fromkeys(anchors, args.repeat)
    if "tasks_google" in anchor_repeats and args.anchor_repeat_google is not None:
        anchor_repeats["tasks_google"] = max(0, min(args.repeat, args.anchor_repeat_google))
    config = OurConfig(workers=args.workers, batch=args.batch, timeout=args.timeout)
    stamp = timestamp()
    results = results_path("drain", when=stamp)

    anchor_python = ensure_venv(DEFAULT_VENV) if anchors else None
    machine = machine_info(installed_versions(anchor_python) if anchor_python else None)
    machine.update(
        command=f"{COMMAND_PREFIX} {shlex.join(sys.argv[1:] if argv is None else argv)}",
        results_file=str(results.relative_to(REPO_ROOT)),
        tasks=args.tasks,
        repeat=args.repeat,
        workers=args.workers,
        batch=args.batch,
        anchor_repeats=anchor_repeats,
        google_max_tasks=args.google_max_tasks,
        sqlite=_sqlite_version(anchor_python),
    )
    records: list[dict[str, Any]] = [machine]
    runs: list[dict[str, Any]] = []
    log(f"results -> {results}")

    def record(run: dict[str, Any], repeat: int, load: list[float]) -> None:
        run = {"kind": "run", "repeat": repeat, "loadavg_before": load, **run}
        runs.append(run)
        records.append(run)
        write_jsonl(results, records)  # after every run, so a failure keeps the rest
        log(
            f"  {LABELS[run['key']]}: enqueue {run['enqueue_tasks_per_s']} tasks/s, "
            f"drain {run['drain_s']:.2f}s = {run['tasks_per_s']} tasks/s, "
            f"start-up {_fmt(run['idle_run_s'], 2)}s"
        )

    try:
        with FirestoreEmulator() as emulator:
            log(f"Firestore emulator on {emulator.host}")
            # The emulator (a JVM) answers its first requests slowly; one unrecorded small
            # run warms it up so that repeat 1 is not penalised (SQLite needs no warm-up).
            warmup_tasks = min(*args.tasks, WARMUP_TASKS)
            log(f"warm-up: {LABELS[OURS]}, {warmup_tasks} tasks (not counted) ...")
            warmup = run_ours(emulator.host, f"drain-{stamp.lower()}-warmup", warmup_tasks, config)
            records.append({"kind": "warmup", **warmup})
            if not args.no_capacity:
                log("the emulator's raw capacity (bare client) ...")
                machine["emulator_capacity"] = capacity = measure_capacity(
                    emulator.host, serial=1000, batched=5000, claim=2000, chunk=50
                )
                log(f"  {capacity}")
            for repeat in range(1, args.repeat + 1):
                for tasks in args.tasks:
                    log(f"repeat {repeat}/{args.repeat}: {LABELS[OURS]}, {tasks} tasks ...")
                    project = f"drain-{stamp.lower()}-{repeat}-{tasks}"
                    load = loadavg()
                    record(run_ours(emulator.host, project, tasks, config), repeat, load)
                    for name in anchors:
                        if repeat > anchor_repeats[name]:
                            continue
                        too_many = (
                            args.google_max_tasks is not None and tasks > args.google_max_tasks
                        )
                        if name == "tasks_google" and too_many:
                            continue
                        log(f"repeat {repeat}/{args.repeat}: {LABELS[name]}, {tasks} tasks ...")
                        load = loadavg()
                        record(run_anchor(name, tasks, args.timeout), repeat, load)
    except (BenchmarkError, AnchorError) as err:
        log(f"FAILED: {err}")
        return 1

    summary = summarize_sizes(runs, machine.get("emulator_capacity"))
    records[0] = machine
    records.append(summary)
    write_jsonl(results, records)
    for size, size_summary in summary["sizes"].items():
        for key, figures in size_summary["systems"].items():
            ratios = size_summary["drain_ratio_of_medians"][key]
            log(
                f"{size} tasks, {LABELS[key]}: median enqueue {figures['enqueue_tasks_per_s']} tasks/s, "
                f"drain {figures['drain_tasks_per_s']} tasks/s, start-up {figures['idle_run_s']}s,"
                f" drain ratios {ratios}"
            )
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        write_page(args.markdown, render_markdown(machine, runs, summary))
        log(f"wrote {args.markdown}")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
