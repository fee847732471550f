"""The worker survives a Firestore outage and carries on when it comes back."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from django_tasks_fs.emulators.firestore import FirestoreEmulator
from django_tasks_fs.emulators.service import free_port
from tests.conftest import REPO_ROOT, subprocess_env, wait_until


def test_worker_rides_out_a_firestore_outage(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "ran.txt"
    emulator = FirestoreEmulator(port=port, log_path=tmp_path / "fs1.log").start()
    env = subprocess_env("outage", FIRESTORE_EMULATOR_HOST=emulator.host)
    worker = subprocess.Popen(
        [sys.executable, "-m", "django", "run_tasks", "-v", "2"],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        emulator.stop()  # Firestore goes away under the running worker...
        wait_until(lambda: worker.poll() is None, timeout=5)
        emulator = FirestoreEmulator(
            port=port, log_path=tmp_path / "fs2.log"
        ).start()  # ...and comes back
        enqueue = (
            "import django; django.setup(); from tests import tasks;"
            f"print(tasks.record.enqueue({str(log)!r}, 'after outage').id)"
        )
        subprocess.run(
            [sys.executable, "-c", enqueue], env=env, cwd=REPO_ROOT, check=True, timeout=120
        )
        wait_until(lambda: log.exists() and log.read_text() == "after outage\n", timeout=90)
        assert worker.poll() is None  # it never died
    finally:
        worker.send_signal(signal.SIGTERM)
        out, _ = worker.communicate(timeout=60)
        emulator.stop()
    assert worker.returncode == 0, out
    assert "outcome=succeeded" in out
