"""A task group on the Cloud Tasks path through the emulators: every member delivered 20
times (the emulator's delivery and 19 injected over HTTP, all at once), the callbacks
still enqueued and run once."""

from __future__ import annotations

import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.tasks import TaskResultStatus, task_backends

from django_tasks_fs import enqueue_group
from django_tasks_fs.dispatching import sweep
from django_tasks_fs.emulators.gcloud.server import GoogleCloudEmulator
from django_tasks_fs.store.groups import GroupStatus
from tests import tasks, tokens
from tests.conftest import wait_until
from tests.live_server import LiveServer, deliver

MEMBERS = 100
DELIVERIES = 20


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_a_group_of_100_under_20_deliveries_each_runs_its_callbacks_once(
    cloud_project: str, gcloud: GoogleCloudEmulator, http_server: LiveServer, tmp_path: Path
) -> None:
    cloud: Any = task_backends["cloud"]
    members_log, callbacks_log = tmp_path / "members.txt", tmp_path / "callbacks.txt"
    callback = tasks.record_group.using(backend="cloud")
    group = enqueue_group(
        tasks.record.using(backend="cloud"),
        [((str(members_log), f"m{i}"), {}) for i in range(MEMBERS)],
        on_complete=(callback, [str(callbacks_log), "complete"], {}),
        on_success=(callback, [str(callbacks_log), "success"], {}),
    )
    assert gcloud.issuer is not None
    token = tokens.sign(gcloud.issuer, aud=cloud.audience)
    url = f"{http_server.url}/tasks/execute/"
    # The emulator delivers each member once; these are the other 19 of each.
    injected = [m.id for m in group.members] * (DELIVERIES - 1)
    random.shuffle(injected)
    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(lambda i: deliver(url, token, i), injected))
    for status, body in outcomes:
        # Ran it, found it running (retry later) or found it finished.
        assert status == 200 or (status == 503 and '"lease_held"' in body), (status, body)

    wait_until(lambda: cloud.groups.get(group.id).status == GroupStatus.COMPLETE, timeout=120)
    done = cloud.groups.get(group.id)
    assert (done.succeeded, done.failed) == (MEMBERS, 0)
    assert len(done.callback_ids) == 2
    # The callbacks delivered 20 times each too.
    callbacks = done.callback_ids * (DELIVERIES - 1)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: deliver(url, token, i), callbacks))
    wait_until(
        lambda: all(cloud.executions.get(i).is_finished for i in done.callback_ids), timeout=60
    )

    assert sorted(lines(members_log)) == sorted(f"m{i}" for i in range(MEMBERS))  # each once
    assert sorted(lines(callbacks_log)) == [
        f"complete {group.id} {MEMBERS} {MEMBERS} 0",
        f"success {group.id} {MEMBERS} {MEMBERS} 0",
    ]
    assert cloud.executions.count() == MEMBERS + 2  # no second callback execution
    for callback_id in done.callback_ids:
        stored = cloud.executions.get(callback_id)
        assert (stored.status, stored.attempts) == (TaskResultStatus.SUCCESSFUL, 1)
    members = Counter(m.status for m in cloud.groups.members(group.id))
    assert members == Counter({TaskResultStatus.SUCCESSFUL: MEMBERS})


def test_a_group_on_cloud_run_jobs_runs_its_callback_once(
    cloud_project: str, tmp_path: Path
) -> None:
    members_log, callbacks_log = tmp_path / "members.txt", tmp_path / "callbacks.txt"
    jobs: Any = task_backends["cloudjobs"]
    group = enqueue_group(
        tasks.record.using(backend="cloudjobs", queue_name="e2e-job"),
        [((str(members_log), f"m{i}"), {}) for i in range(3)],
        on_complete=(
            tasks.record_group.using(backend="cloudjobs", queue_name="e2e-job"),
            [str(callbacks_log), "complete"],
            {},
        ),
    )
    wait_until(lambda: len(lines(callbacks_log)) == 1, timeout=120)
    assert sorted(lines(members_log)) == ["m0", "m1", "m2"]
    assert lines(callbacks_log) == [f"complete {group.id} 3 3 0"]
    done = jobs.groups.get(group.id)
    assert done.callback_ids == [f"{group.id}-complete"]
    wait_until(lambda: jobs.executions.get(done.callback_ids[0]).is_finished, timeout=60)
    assert jobs.executions.get(done.callback_ids[0]).status == TaskResultStatus.SUCCESSFUL


def test_the_sweeper_completes_a_group_whose_last_check_was_lost(
    cloud_project: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    members_log, callbacks_log = tmp_path / "members.txt", tmp_path / "callbacks.txt"
    cloud: Any = task_backends["cloud"]
    # Every member's worker "dies" between its final write and the group check.
    skipped: list[str] = []
    monkeypatch.setattr(
        "django_tasks_fs.execution.attempt.member_finished",
        lambda backend, execution: skipped.append(execution.id),
    )
    group = enqueue_group(
        tasks.record.using(backend="cloud"),
        [((str(members_log), f"m{i}"), {}) for i in range(2)],
        on_complete=(tasks.record_group.using(backend="cloud"), [str(callbacks_log), "x"], {}),
    )
    wait_until(lambda: len(lines(members_log)) == 2, timeout=60)
    wait_until(lambda: all(m.is_finished for m in cloud.groups.members(group.id)), timeout=30)
    # Undo only once both attempts passed the check: one still on its way to it would
    # otherwise find the real check and complete the group before the sweeper.
    wait_until(lambda: len(set(skipped)) == 2, timeout=30)
    monkeypatch.undo()
    assert cloud.groups.get(group.id).status == GroupStatus.OPEN
    assert sweep(cloud, grace=timedelta(0)).groups_completed == 1
    assert sweep(cloud, grace=timedelta(0)).groups_completed == 0
    wait_until(lambda: lines(callbacks_log) == [f"x {group.id} 2 2 0"], timeout=60)
