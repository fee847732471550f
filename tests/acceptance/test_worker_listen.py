"""``run_tasks`` follows Firestore with listeners: an idle worker sends no query, and a
task enqueued while it waits starts without waiting for the poll interval."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from django_tasks_fs.store.ops.counting import OP_COUNTS_ENV, read_reports
from tests import tasks
from tests.conftest import REPO_ROOT, subprocess_env, wait_until

#: Seconds the worker idles: at the test settings' 0.1 s poll interval, a polling
#: worker would send some 60 queries per backend meanwhile.
IDLE = 3.0


def start_worker(project: str, counts: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
    import sys

    env = subprocess_env(project, **{OP_COUNTS_ENV: str(counts)})
    with log.open("w") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "django", "run_tasks", "-v", "2", *args],
            env=env,
            cwd=REPO_ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(worker: subprocess.Popen[bytes]) -> None:
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0


def worker_queries(counts: Path) -> int:
    """Queries sent by the run_tasks process (its children send none of their own)."""
    return sum(
        r["counts"]["queries"] for r in read_reports(counts) if "run_tasks" in " ".join(r["argv"])
    )


def test_an_idle_worker_sends_no_query(tasks_project: str, tmp_path: Path) -> None:
    counts, log = tmp_path / "counts", tmp_path / "worker.log"
    worker = start_worker(tasks_project, counts, log)
    try:
        wait_until(lambda: "listening for work" in log.read_text(), timeout=60)
        time.sleep(IDLE)
    finally:
        stop(worker)
    queries = worker_queries(counts)
    # Start-up only: one poll round (ready, expired leases, schedules) and one lease
    # check per backend of the test settings (3 backends).
    assert 0 < queries <= 12, log.read_text()
    assert "polling until Firestore answers" not in log.read_text()


def test_a_task_enqueued_while_idle_starts_before_the_next_poll(
    tasks_project: str, tmp_path: Path
) -> None:
    counts, log, ran = tmp_path / "counts", tmp_path / "worker.log", tmp_path / "ran.txt"
    worker = start_worker(tasks_project, counts, log, "--poll-interval", "300")
    try:
        wait_until(lambda: "listening for work" in log.read_text(), timeout=60)
        started = time.monotonic()
        result = tasks.record.enqueue(str(ran), "picked up")
        # Far less than the 300 s poll interval: only a listener can have told the worker.
        wait_until(lambda: ran.exists() and "picked up" in ran.read_text(), timeout=60)
        assert time.monotonic() - started < 300
    finally:
        stop(worker)
    result.refresh()
    assert str(result.status) == "SUCCESSFUL"
    assert worker_queries(counts) <= 12, log.read_text()
