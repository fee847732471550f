"""The HTTP server of ``run_tasks --health-port`` (in-memory store, the loop not started)."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from django_tasks_fs.worker import loop
from django_tasks_fs.worker.loop import Worker, WorkerSettings


@pytest.fixture(autouse=True)
def settings_module(monkeypatch: pytest.MonkeyPatch) -> None:
    # The settings fixture hides the module the worker names to its children (none start).
    monkeypatch.setattr(loop, "settings_module", lambda: "tests.settings")


@pytest.fixture
def worker(backend: Any) -> Iterator[Worker]:
    made = Worker(WorkerSettings(backends=[backend], health_port=0))
    yield made
    if made._server is not None:
        made._server.stop()


def get(port: int, path: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def test_healthz_and_metrics(worker: Worker) -> None:
    port = worker.serve_health()
    status, kind, body = get(port, "/healthz")
    assert (status, kind) == (200, "application/json")
    assert json.loads(body)["status"] == "ok"
    status, kind, body = get(port, "/metrics?x=1")
    assert (status, kind) == (200, "text/plain; version=0.0.4; charset=utf-8")
    assert "# TYPE django_tasks_fs_attempts_total counter\n" in body
    assert "django_tasks_fs_in_flight 0\n" in body
    assert "django_tasks_fs_up 1\n" in body
    assert get(port, "/")[0] == 404


def test_a_port_in_use_is_a_command_error(backend: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(CommandError, match=rf"--health-port {port}: cannot listen \("):
            call_command("run_tasks", "--backend", "default", "--health-port", str(port))


def test_a_port_out_of_range_is_a_command_error(backend: Any) -> None:
    with pytest.raises(CommandError, match="--health-port must be a port number, not 70000"):
        call_command("run_tasks", "--backend", "default", "--health-port", "70000")
