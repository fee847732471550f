"""The worker survives a Firestore outage, says so, and carries on when it comes back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from django_tasks_fs.emulators.firestore import FirestoreEmulator
from django_tasks_fs.emulators.service import free_port
from emulator.faultproxy import FaultProxy
from tests.conftest import REPO_ROOT, start_django, subprocess_env, wait_until, within


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


def test_a_worker_cut_off_from_firestore_says_so_once_and_stops_promptly(
    project_id: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    """Started while Firestore is unreachable: a WARNING naming the host within seconds
    (not after the client's 5-minute retries), once however many polls fail; an INFO
    when Firestore answers again; and SIGTERM during an outage exits in seconds."""
    proxy.cut()
    out = tmp_path / "worker.log"
    with out.open("w") as sink:
        worker = start_django(
            project_id,
            "run_tasks",
            "-v",
            "3",  # DEBUG: the failed polls after the first are visible, and counted
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    try:
        wait_until(lambda: "cut off from Firestore" in out.read_text(), timeout=30)
        text = out.read_text()
        assert f"the Firestore emulator at {proxy.host!r} (FIRESTORE_EMULATOR_HOST)" in text
        assert f"project {project_id!r}, database '(default)'" in text
        assert "Is the emulator running at" in text
        wait_until(lambda: "still cut off from Firestore" in out.read_text(), timeout=60)
        assert out.read_text().count("WARNING django_tasks_fs.worker.outage") == 1

        proxy.restore()
        wait_until(lambda: "Firestore answers again after" in out.read_text(), timeout=120)
        assert "INFO django_tasks_fs.worker.outage Firestore answers again" in out.read_text()

        proxy.cut()
        wait_until(lambda: out.read_text().count("cut off from Firestore;") == 2, timeout=30)
        worker.send_signal(signal.SIGTERM)
        within(30, worker.wait)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    assert worker.returncode == 0, out.read_text()
    assert "Traceback" not in out.read_text()
