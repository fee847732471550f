"""Unique enqueue on the Google Cloud backends, through the emulators: one Cloud Task (or
job execution) per key while the execution is unfinished, a new one once it finished."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.tasks import TaskResultStatus

from django_tasks_fs import enqueue_many
from tests import tasks
from tests.conftest import wait_until


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def finished(result: Any) -> bool:
    result.refresh()
    return bool(result.is_finished)


@pytest.mark.parametrize(
    ("backend", "queue"), [("cloud", "default"), ("cloudjobs", "e2e-job")], ids=["tasks", "jobs"]
)
def test_one_delivery_per_key_until_it_finished(
    cloud_project: str, tmp_path: Path, backend: str, queue: str
) -> None:
    log, gate = tmp_path / "ran.txt", tmp_path / "gate"
    task = tasks.sync_user.using(backend=backend, queue_name=queue)
    # It waits for the gate: unfinished when the duplicates arrive, however fast delivery is.
    first = task.enqueue(5, path=str(log), gate=str(gate))
    duplicates = [task.enqueue(5, path=str(log)) for _ in range(5)]
    assert {d.id for d in duplicates} == {first.id}
    gate.touch()
    wait_until(lambda: finished(first), timeout=60)
    assert first.status == TaskResultStatus.SUCCESSFUL
    assert lines(log) == ["sync 5"]

    gate = tmp_path / "gate-2"
    later = task.enqueue(5, path=str(log), gate=str(gate))  # released by the finish
    assert later.id != first.id
    # enqueue_many: a key per call; a call finds its key held by `later` or an earlier call.
    calls = [((5,), {"path": str(log)}), ((6,), {"path": str(log), "gate": str(gate)})]
    bulk = enqueue_many(task, calls * 2)
    assert (bulk[0].id, bulk[2].id) == (later.id, later.id)
    assert bulk[1].id == bulk[3].id != later.id
    gate.touch()
    wait_until(lambda: finished(later) and finished(bulk[1]), timeout=60)
    assert sorted(lines(log)) == ["sync 5", "sync 5", "sync 6"]
