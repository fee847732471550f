"""``run_tasks --health-port``: /healthz follows Firestore through an outage, and
/metrics counts what the executions really became (read back from the store)."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.tasks import TaskResultStatus

from django_tasks_fs.emulators.service import free_port
from emulator.faultproxy import FaultProxy
from tests import tasks
from tests.conftest import start_django, wait_until, within

#: Generous: a worker on a loaded 2-core machine; the tests poll, never sleep.
DEADLINE = 120
ATTEMPT = re.compile(
    r'^django_tasks_fs_attempts_total\{backend="default",queue="default",'
    r'task="([^"]+)",outcome="([^"]+)"\} (\d+)$',
    re.M,
)


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""  # not listening yet


def health(port: int) -> tuple[int, dict[str, Any]]:
    status, body = get(port, "/healthz")
    return status, json.loads(body) if body else {}


def attempts(text: str) -> dict[tuple[str, str], int]:
    return {(task, outcome): int(n) for task, outcome, n in ATTEMPT.findall(text)}


def start_worker(project: str, port: int, log: Path) -> subprocess.Popen[str]:
    with log.open("w") as sink:
        return start_django(  # type: ignore[no-any-return]
            project, "run_tasks", "--backend", "default", "--health-port", str(port), "-v", "2",
            stdout=sink, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip


def stop(worker: subprocess.Popen[str]) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            within(30, worker.wait)
        finally:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()


def test_healthz_turns_unhealthy_when_firestore_is_cut_and_healthy_after(
    project_id: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "worker.log"
    worker = start_worker(project_id, port, log)
    try:
        wait_until(lambda: health(port)[0] == 200, timeout=DEADLINE)
        assert health(port)[1]["firestore_reachable"] is True

        proxy.cut()
        wait_until(lambda: health(port)[0] == 503, timeout=DEADLINE)
        status, body = health(port)
        assert body["status"] == "unhealthy"
        assert body["problems"] == ["Firestore unreachable (the last poll or listener failed)"]
        assert body["firestore_reachable"] is False
        status, text = get(port, "/metrics")
        assert status == 200  # metrics are still served, from memory
        assert "django_tasks_fs_firestore_reachable 0\n" in text
        assert "django_tasks_fs_up 0\n" in text

        proxy.restore()
        wait_until(lambda: health(port)[0] == 200, timeout=DEADLINE)
        body = health(port)[1]
        assert body["last_step_seconds_ago"] >= 0
        del body["last_step_seconds_ago"]
        assert body == {
            "status": "ok",
            "problems": [],
            "firestore_reachable": True,
            "stopping": False,
        }
        assert get(port, "/nope")[0] == 404
    finally:
        stop(worker)
    assert worker.returncode == 0, log.read_text()


@pytest.mark.firestore
def test_metrics_scraped_during_a_drain_equal_the_real_outcomes(
    tasks_project: str, tmp_path: Path
) -> None:
    """50 executions, 10 of which fail every attempt (3 attempts each)."""
    ids = [tasks.noop.enqueue().id for _ in range(40)]
    ids += [tasks.failing.enqueue().id for _ in range(10)]
    port = free_port()
    log = tmp_path / "worker.log"
    store = tasks.noop.get_backend().executions  # type: ignore[attr-defined]
    worker = start_worker(tasks_project, port, log)
    scrapes: list[dict[tuple[str, str], int]] = []

    def drained() -> bool:
        status, text = get(port, "/metrics")
        if status == 200:
            scrapes.append(attempts(text))
        return all(e.is_finished for e in store.get_many(ids))

    try:
        wait_until(drained, timeout=DEADLINE)
        final = store.get_many(ids)

        texts: list[str] = []

        def counted() -> bool:  # the last results reach the parent just after the write
            texts.append(get(port, "/metrics")[1])
            scrapes.append(attempts(texts[-1]))
            return sum(scrapes[-1].values()) == sum(e.attempts for e in final)

        with contextlib.suppress(pytest.fail.Exception):
            wait_until(counted, timeout=DEADLINE)
        recorded = sorted((e.task_path, str(e.status), e.attempts) for e in final)
        assert sum(scrapes[-1].values()) == sum(e.attempts for e in final), (texts[-1], recorded)
    finally:
        stop(worker)
    assert worker.returncode == 0, log.read_text()

    succeeded = sum(1 for e in final if e.status == TaskResultStatus.SUCCESSFUL)
    failed = [e for e in final if e.status == TaskResultStatus.FAILED]
    assert (succeeded, len(failed)) == (40, 10)
    assert scrapes[-1] == {
        ("tests.tasks.noop", "succeeded"): succeeded,
        ("tests.tasks.failing", "failed"): len(failed),
        ("tests.tasks.failing", "retry"): sum(e.attempts - 1 for e in failed),
    }
    # Scraped during the drain: every counter only ever grows.
    for before, after in itertools.pairwise(scrapes):
        assert all(after.get(key, 0) >= n for key, n in before.items())
    assert len({sum(s.values()) for s in scrapes}) > 1  # some scrapes saw it under way
