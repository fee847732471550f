"""Drain-throughput runs of the anchor systems, each in the anchors' own venv.

Stdlib only, so it runs under any Python >= 3.10 (the interpreter of the main
project, or a bare ``python3``). The anchors themselves need Python >= 3.12 and
Django >= 6.1 and live in ``benchmarks/.venv-anchors``, which ``ensure_venv``
builds with uv from ``requirements.txt``; they are never dependencies of
django-tasks-fs.

One run of one anchor:

1. migrate a fresh SQLite file in a new temporary directory (not timed);
2. start the anchor's worker once against the empty queue and time it
   (``idle_run_s``: interpreter start, ``django.setup()``, one empty poll);
3. enqueue N ``noop`` tasks in one ``manage.py shell`` process, timing only the
   N ``enqueue()`` calls (``enqueue_s``; each call commits on its own);
4. start the worker and time until every task has finished (``drain_s``,
   including the worker's own start-up, which ``idle_run_s`` estimates);
5. check straight in SQLite that exactly N rows exist and all are SUCCESSFUL.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import platform
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ANCHORS_DIR = Path(__file__).resolve().parent
BENCHMARKS_DIR = ANCHORS_DIR.parent
REQUIREMENTS = ANCHORS_DIR / "requirements.txt"
DEFAULT_VENV = BENCHMARKS_DIR / ".venv-anchors"
#: Stamp inside the venv holding the hash of the requirements it was built from.
STAMP_NAME = "anchors-requirements.sha256"
#: Worker processes/children for django-tasks-google (the machine has 2 cores).
GOOGLE_MAX_WORKERS = 2
#: run_tasks poll interval; its default of 1.0 s would cap it at 2 tasks/s.
GOOGLE_POLL_INTERVAL_S = 0.05
#: How often the runner reads task statuses while a polling worker drains.
PROGRESS_POLL_S = 0.02
#: ox_worker's --concurrency (threads in its one process). Its default is 1; 4 drained
#: fastest here (500 tasks, medians of 2: 28 tasks/s with 1, 40-46 with 4, 33 with 8).
OX_CONCURRENCY = 4
#: The packages whose versions are reported (all in requirements.txt).
PACKAGES = ("django", "django-tasks-db", "django-tasks-google", "django-vtasks", "django-ox")
SQLITE_OPTIONS = "journal_mode=WAL, transaction_mode=IMMEDIATE, busy timeout 30 s"

ENQUEUE_SCRIPT = """
import json, os, time
from django.db import connection
from tasks import noop
n = int(os.environ["BENCH_TASKS"])
noop.get_backend()
connection.ensure_connection()
start = time.perf_counter()
for _ in range(n):
    noop.enqueue()
elapsed = time.perf_counter() - start
print(json.dumps({"enqueued": n, "enqueue_s": elapsed}))
"""


class AnchorError(RuntimeError):
    """An anchor run failed to set up, drain, or verify."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Anchor:
    """How to drive one anchor system."""

    name: str  #: key for ``run_anchor``; also the project folder's name
    system: str  #: label in the results
    table: str  #: the backend's result table, read directly for progress
    worker: tuple[str, ...]  #: manage.py arguments of the draining worker
    #: manage.py arguments of one worker pass on an empty queue; None: the worker has
    #: no mode that exits on an empty queue, so its start-up is not measured alone
    idle: tuple[str, ...] | None
    exits_when_empty: bool  #: True: drained when the worker exits; else poll and SIGTERM
    concurrency: str  #: worker concurrency, spelled out for the results
    env: tuple[tuple[str, str], ...] = ()
    ready_status: str = "READY"  #: the status of an enqueued row
    deletes_done: bool = False  #: True: a SUCCESSFUL task's row is deleted, not kept

    @property
    def project_dir(self) -> Path:
        """Return the folder holding this anchor's manage.py."""
        return ANCHORS_DIR / self.name


ANCHORS: dict[str, Anchor] = {
    anchor.name: anchor
    for anchor in (
        Anchor(
            name="tasks_db",
            system="django-tasks-db db_worker --batch (SQLite)",
            table="django_tasks_database_dbtaskresult",
            worker=("db_worker", "--batch", "--no-startup-delay", "--no-reload", "-v", "0"),
            idle=("db_worker", "--batch", "--no-startup-delay", "--no-reload", "-v", "0"),
            exits_when_empty=True,
            concurrency="1 worker process, 1 task at a time (db_worker is single-threaded)",
        ),
        Anchor(
            name="tasks_google",
            system=(
                f"django-tasks-google ProcessBackend run_tasks "
                f"max_workers={GOOGLE_MAX_WORKERS} (SQLite)"
            ),
            table="django_tasks_google_taskexecution",
            worker=(
                "run_tasks",
                "--max-workers",
                str(GOOGLE_MAX_WORKERS),
                "--batch-size",
                str(GOOGLE_MAX_WORKERS),
                "--poll-interval",
                str(GOOGLE_POLL_INTERVAL_S),
            ),
            idle=("run_tasks", "--once", "--max-workers", str(GOOGLE_MAX_WORKERS)),
            exits_when_empty=False,
            concurrency=(
                f"1 polling process, max_workers={GOOGLE_MAX_WORKERS} spawned child "
                f"processes (one fresh interpreter + django.setup() per task), "
                f"batch_size={GOOGLE_MAX_WORKERS}, poll_interval={GOOGLE_POLL_INTERVAL_S}s, "
                f"mode=cloud_tasks"
            ),
            env=(
                ("BENCH_MAX_WORKERS", str(GOOGLE_MAX_WORKERS)),
                ("BENCH_POLL_INTERVAL", str(GOOGLE_POLL_INTERVAL_S)),
            ),
        ),
        Anchor(
            name="tasks_vtasks",
            system="django-vtasks DatabaseTaskBackend runworker (SQLite)",
            table="db_queuedtask",
            worker=("runworker", "--queue", "default"),
            idle=None,
            exits_when_empty=False,
            concurrency=(
                "1 asyncio worker process, package defaults: VTASKS_CONCURRENCY=20, sync "
                "tasks in threads; rows deleted on success (no result kept)"
            ),
            ready_status="QUEUED",
            deletes_done=True,
        ),
        Anchor(
            name="tasks_ox",
            system=f"django-ox OxBackend ox_worker --batch --concurrency {OX_CONCURRENCY} (SQLite)",
            table="django_ox_oxtask",
            worker=("ox_worker", "--batch", "--concurrency", str(OX_CONCURRENCY)),
            idle=("ox_worker", "--batch", "--concurrency", str(OX_CONCURRENCY)),
            exits_when_empty=True,
            concurrency=(
                f"1 worker process, --concurrency {OX_CONCURRENCY} threads, claims by "
                "compare-and-set UPDATE on SQLite"
            ),
        ),
    )
}


def log(message: str) -> None:
    """Write a progress line to stderr, keeping stdout for results."""
    print(f"[anchors] {message}", file=sys.stderr, flush=True)


def venv_python(venv: Path = DEFAULT_VENV) -> Path:
    """Return the interpreter path inside ``venv``."""
    return venv / "bin" / "python"


def _python_version(executable: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [executable, "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    return (int(out[0]), int(out[1])) if len(out) == 2 else None


def find_base_python() -> str:
    """Return a Python >= 3.12 on this machine, without downloading one.

    Raises AnchorError when none is found.
    """
    candidates = [os.environ.get("ANCHORS_PYTHON", ""), sys.executable]
    candidates += [shutil.which(f"python3.{minor}") or "" for minor in (12, 13, 14)]
    # pyenv shims refuse versions that are not selected, so look behind them.
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/3.1[2-9]*/bin/python3"))
    for candidate in filter(None, candidates):
        version = _python_version(candidate)
        if version is not None and version >= (3, 12):
            return candidate
    raise AnchorError("no Python >= 3.12 found; set ANCHORS_PYTHON to one")


def _requirements_hash() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()


def ensure_venv(venv: Path = DEFAULT_VENV) -> Path:
    """Build or refresh the anchors' venv from requirements.txt; return its python."""
    python = venv_python(venv)
    stamp = venv / STAMP_NAME
    wanted = _requirements_hash()
    if python.exists() and stamp.exists() and stamp.read_text().strip() == wanted:
        return python
    uv = shutil.which("uv")
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    if not python.exists():
        base = find_base_python()
        log(f"creating {venv} from {base}")
        if uv:
            _run([uv, "venv", "--python", base, str(venv)], env=env)
        else:
            _run([base, "-m", "venv", str(venv)], env=env)
    log(f"installing {REQUIREMENTS.name} into {venv}")
    if uv:
        # Compiled bytecode matters: run_tasks starts a fresh interpreter per task.
        install = [uv, "pip", "install", "--compile-bytecode", "--python", str(python)]
        _run([*install, "-r", str(REQUIREMENTS)], env=env)
    else:
        _run([str(python), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)], env=env)
    stamp.write_text(wanted + "\n")
    return python


def installed_versions(python: Path) -> dict[str, str]:
    """Return the versions of Python and the anchor packages in the venv."""
    script = (
        "import json, platform\n"
        "from importlib.metadata import version\n"
        f"names = {list(PACKAGES)!r}\n"
        "out = {n: version(n) for n in names}\n"
        "out['python'] = platform.python_version()\n"
        "print(json.dumps(out))\n"
    )
    result = _run([str(python), "-c", script])
    versions: dict[str, str] = json.loads(result.stdout)
    return versions


def _run(
    args: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise AnchorError(
            f"{' '.join(args)} exited {result.returncode}:\n{result.stdout[-2000:]}"
            f"\n{result.stderr[-4000:]}"
        )
    return result


def _status_counts(db_path: Path, table: str) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        rows = conn.execute(f"SELECT status, COUNT(*) FROM {table} GROUP BY status")
        return {str(status): int(count) for status, count in rows}
    finally:
        conn.close()


def _drained(anchor: Anchor, counts: dict[str, int], tasks: int) -> bool:
    """Has every task finished? (Rows gone, for an anchor that deletes finished ones.)"""
    if anchor.deletes_done:
        return sum(counts.values()) == counts.get("FAILED", 0)
    return counts.get("SUCCESSFUL", 0) + counts.get("FAILED", 0) >= tasks


def _expected_after_drain(anchor: Anchor, tasks: int) -> dict[str, int]:
    return {} if anchor.deletes_done else {"SUCCESSFUL": tasks}


def _drain_until_exit(
    anchor: Anchor, manage: list[str], env: dict[str, str], logs: Path, timeout: float
) -> float:
    with (logs / "worker.log").open("w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [*manage, *anchor.worker], env=env, cwd=anchor.project_dir, stdout=out, stderr=out
        )
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop(proc, grace=0)
            raise AnchorError(f"{anchor.name}: worker still running after {timeout}s") from None
        elapsed = time.perf_counter() - start
    if code != 0:
        raise AnchorError(f"{anchor.name}: worker exited {code}: {_tail(logs / 'worker.log')}")
    return elapsed


def _drain_by_polling(
    anchor: Anchor,
    manage: list[str],
    env: dict[str, str],
    logs: Path,
    db_path: Path,
    tasks: int,
    timeout: float,
) -> float:
    with (logs / "worker.log").open("w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [*manage, *anchor.worker], env=env, cwd=anchor.project_dir, stdout=out, stderr=out
        )
        try:
            while True:
                if _drained(anchor, _status_counts(db_path, anchor.table), tasks):
                    elapsed = time.perf_counter() - start
                    break
                if proc.poll() is not None:
                    raise AnchorError(
                        f"{anchor.name}: worker exited {proc.returncode} before draining: "
                        f"{_tail(logs / 'worker.log')}"
                    )
                if time.perf_counter() - start > timeout:
                    raise AnchorError(f"{anchor.name}: not drained after {timeout}s")
                time.sleep(PROGRESS_POLL_S)
        finally:
            _stop(proc, grace=30)
    return elapsed


def _stop(proc: subprocess.Popen[bytes], *, grace: float) -> None:
    """Stop a worker: SIGTERM and ``grace`` seconds to exit, then SIGKILL (at once if 0)."""
    if proc.poll() is not None:
        return
    if grace > 0:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            pass
    proc.kill()
    proc.wait()


def _tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:]


def _anchor_env(anchor: Anchor, db_path: Path, tasks: int) -> dict[str, str]:
    """The environment of the anchor's processes: its own settings, no inherited Django."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "VIRTUAL_ENV"))
        and key not in ("PYTHONPATH", "PYTHONHOME", "PYTHONDONTWRITEBYTECODE")
    }
    env.update(anchor.env)
    env.update(
        DJANGO_SETTINGS_MODULE="settings",
        BENCH_SQLITE_PATH=str(db_path),
        BENCH_TASKS=str(tasks),
    )
    return env


def _timed_enqueue(
    anchor: Anchor,
    manage: list[str],
    env: dict[str, str],
    db_path: Path,
    tasks: int,
    timeout: float,
) -> float:
    """Enqueue ``tasks`` noop tasks in one shell process; return the seconds the N
    ``enqueue()`` calls took. Raises AnchorError unless exactly N rows are ready."""
    shell = [*manage, "shell", "--no-imports", "-c", ENQUEUE_SCRIPT]
    result = _run(shell, env=env, cwd=anchor.project_dir, timeout=timeout)
    enqueue_s = float(json.loads(result.stdout.strip().splitlines()[-1])["enqueue_s"])
    counts = _status_counts(db_path, anchor.table)
    if counts != {anchor.ready_status: tasks}:
        raise AnchorError(
            f"{anchor.name}: after enqueue expected {tasks} {anchor.ready_status}, got {counts}"
        )
    return enqueue_s


def time_enqueue(
    name: str, tasks: int, *, venv: Path = DEFAULT_VENV, timeout: float = 3600.0
) -> dict[str, Any]:
    """Only step 3 of ``run_anchor`` (on a freshly migrated SQLite file): the seconds
    ``tasks`` serial ``enqueue()`` calls take, each committing on its own."""
    if name not in ANCHORS:
        raise AnchorError(f"unknown anchor {name!r}; choose from {sorted(ANCHORS)}")
    anchor = ANCHORS[name]
    python = ensure_venv(venv)
    workdir = Path(tempfile.mkdtemp(prefix=f"anchor-{name}-"))
    db_path = workdir / "db.sqlite3"
    env = _anchor_env(anchor, db_path, tasks)
    manage = [str(python), "manage.py"]
    try:
        _run([*manage, "migrate", "-v", "0"], env=env, cwd=anchor.project_dir)
        enqueue_s = _timed_enqueue(anchor, manage, env, db_path, tasks, timeout)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "system": anchor.system,
        "anchor": name,
        "tasks": tasks,
        "enqueue_s": round(enqueue_s, 4),
        "enqueue_tasks_per_s": round(tasks / enqueue_s, 1),
        "storage": f"SQLite ({SQLITE_OPTIONS}), fresh file in a temp dir",
        "versions": installed_versions(python),
    }


def run_anchor(
    name: str,
    tasks: int,
    *,
    venv: Path = DEFAULT_VENV,
    timeout: float = 3600.0,
    keep_dir: bool = False,
) -> dict[str, Any]:
    """Enqueue ``tasks`` no-op tasks on anchor ``name``, drain them, return the figures.

    Raises AnchorError if the run fails or any task did not end SUCCESSFUL.
    """
    if name not in ANCHORS:
        raise AnchorError(f"unknown anchor {name!r}; choose from {sorted(ANCHORS)}")
    if tasks < 1:
        raise AnchorError("tasks must be at least 1")
    anchor = ANCHORS[name]
    python = ensure_venv(venv)
    workdir = Path(tempfile.mkdtemp(prefix=f"anchor-{name}-"))
    db_path = workdir / "db.sqlite3"
    env = _anchor_env(anchor, db_path, tasks)
    manage = [str(python), "manage.py"]
    try:
        _run([*manage, "migrate", "-v", "0"], env=env, cwd=anchor.project_dir)

        idle_run_s = None
        if anchor.idle is not None:
            start = time.perf_counter()
            _run([*manage, *anchor.idle], env=env, cwd=anchor.project_dir, timeout=300)
            idle_run_s = time.perf_counter() - start

        enqueue_s = _timed_enqueue(anchor, manage, env, db_path, tasks, timeout)

        if anchor.exits_when_empty:
            drain_s = _drain_until_exit(anchor, manage, env, workdir, timeout)
        else:
            drain_s = _drain_by_polling(anchor, manage, env, workdir, db_path, tasks, timeout)

        counts = _status_counts(db_path, anchor.table)
        if counts != _expected_after_drain(anchor, tasks):
            raise AnchorError(
                f"{name}: after drain expected {_expected_after_drain(anchor, tasks)}, got {counts}"
            )
    finally:
        if not keep_dir:
            shutil.rmtree(workdir, ignore_errors=True)

    return {
        "system": anchor.system,
        "anchor": name,
        "tasks": tasks,
        "enqueue_s": round(enqueue_s, 4),
        "enqueue_tasks_per_s": round(tasks / enqueue_s, 1),
        "drain_s": round(drain_s, 4),
        "tasks_per_s": round(tasks / drain_s, 1),
        "idle_run_s": None if idle_run_s is None else round(idle_run_s, 4),
        "concurrency": anchor.concurrency,
        "worker_cmd": " ".join(["manage.py", *anchor.worker]),
        "storage": f"SQLite ({SQLITE_OPTIONS}), fresh file in a temp dir",
        "versions": installed_versions(python),
        "host": f"{platform.machine()} {os.cpu_count()} cpus",
    }
