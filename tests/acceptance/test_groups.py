"""Task groups through ``run_tasks`` subprocesses: the worker killed with SIGKILL in the
middle of a group, the callbacks still run once."""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

from django.tasks import TaskResultStatus, task_backends

from django_tasks_fs import enqueue_group, get_group
from django_tasks_fs.store.groups import GroupStatus
from tests import tasks
from tests.acceptance.test_worker import background_worker, lines, run_worker
from tests.conftest import wait_until

MEMBERS = 30


def test_kill_9_during_a_group_then_its_callbacks_run_once(
    tasks_project: str, tmp_path: Path
) -> None:
    members_log, callbacks_log = tmp_path / "members.txt", tmp_path / "callbacks.txt"
    group = enqueue_group(
        tasks.record_and_sleep,
        [((str(members_log), f"m{i}", 0.2), {}) for i in range(MEMBERS)],
        on_complete=(tasks.record_group, [str(callbacks_log), "complete"], {}),
        on_success=(tasks.record_group, [str(callbacks_log), "success"], {}),
    )
    first = background_worker(tasks_project)
    ended = lambda: [line for line in lines(members_log) if line.startswith("end")]  # noqa: E731
    wait_until(lambda: len(ended()) >= 8, timeout=60)
    os.killpg(first.pid, signal.SIGKILL)
    first.communicate(timeout=30)
    assert len(set(ended())) < MEMBERS
    assert lines(callbacks_log) == []

    second = background_worker(tasks_project)
    try:
        wait_until(lambda: len(lines(callbacks_log)) >= 2, timeout=90)
        backend: Any = task_backends["default"]
        wait_until(
            lambda: all(
                backend.executions.get(i).is_finished for i in get_group(group.id).callback_ids
            ),
            timeout=30,
        )
    finally:
        second.send_signal(signal.SIGTERM)
        second.communicate(timeout=60)
    assert set(ended()) == {f"end m{i}" for i in range(MEMBERS)}  # some ran twice (the killed)
    assert sorted(lines(callbacks_log)) == [
        f"complete {group.id} {MEMBERS} {MEMBERS} 0",
        f"success {group.id} {MEMBERS} {MEMBERS} 0",
    ]
    done = get_group(group.id)
    assert (done.status, done.succeeded, done.failed) == (GroupStatus.COMPLETE, MEMBERS, 0)
    assert Counter(m.status for m in done.members) == Counter(
        {TaskResultStatus.SUCCESSFUL: MEMBERS}
    )


def test_a_burst_worker_runs_the_members_then_the_callbacks(
    tasks_project: str, tmp_path: Path
) -> None:
    callbacks_log = tmp_path / "callbacks.txt"
    group = enqueue_group(
        [(tasks.noop, (), {}), (tasks.permanent, (), {}), (tasks.noop, (), {})],
        on_complete=(tasks.record_group, [str(callbacks_log), "complete"], {}),
        on_success=(tasks.record_group, [str(callbacks_log), "success"], {}),
    )
    done = run_worker(tasks_project, "--burst")
    assert done.returncode == 0, done.stdout
    assert lines(callbacks_log) == [f"complete {group.id} 3 2 1"]  # on_success: not enqueued
    assert get_group(group.id).callback_ids == (f"{group.id}-complete",)
