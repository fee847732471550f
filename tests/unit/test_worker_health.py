"""The worker's /healthz verdict and /metrics text (no I/O; the clock is set by hand)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from django_tasks_fs.exceptions import StoreUnavailable
from django_tasks_fs.store import TaskExecution, new_execution_id
from django_tasks_fs.worker import health as health_module
from django_tasks_fs.worker.chunks import Done, Job
from django_tasks_fs.worker.health import Health
from django_tasks_fs.worker.metrics import Metrics
from django_tasks_fs.worker.outage import OutageReport


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    ticking = Clock()
    monkeypatch.setattr(health_module.time, "monotonic", ticking)
    return ticking


def test_a_loop_late_from_its_wait_is_stalled(clock: Clock) -> None:
    health = Health(OutageReport(), stall=60)
    assert health.verdict().healthy
    health.waiting(30)  # back by 1030 at the latest
    clock.now = 1090
    assert health.verdict().healthy  # 60 s late: not more
    clock.now = 1091
    verdict = health.verdict()
    assert not verdict.healthy
    assert verdict.body["problems"] == ["the worker loop is 61s late (stalled)"]
    assert verdict.body["last_step_seconds_ago"] == 91
    health.stopping = True  # finishing running attempts: not a stall
    assert health.verdict().healthy
    health.stopping = False
    health.stepped()
    assert health.verdict().healthy


def test_an_outage_seen_by_the_loop_is_unhealthy_until_firestore_answers(clock: Clock) -> None:
    outage = OutageReport()
    health = Health(outage)
    outage.failed(StoreUnavailable("no answer"))
    verdict = health.verdict()
    assert (verdict.healthy, verdict.body["firestore_reachable"]) == (False, False)
    outage.answered("the emulator")
    assert health.verdict().healthy


def job(*executions: TaskExecution) -> Job:
    return Job(backend="default", executions=executions)


def execution(task: str, queue: str = "default") -> TaskExecution:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return TaskExecution(
        id=new_execution_id(), task_path=task, queue_name=queue, backend="default",
        enqueued_at=at, run_after=at,
    )  # fmt: skip


def test_the_metrics_text() -> None:
    metrics = Metrics()
    a, b = execution("app.tasks.a"), execution('app.tasks."b"', queue="emails")
    metrics.observe(
        job(a, b),
        [
            Done(execution_id=a.id, outcome="succeeded", duration=0.02),
            Done(execution_id=b.id, outcome="retry", duration=3.0),
        ],
    )
    metrics.observe(job(a), [Done(execution_id=a.id, outcome="exit 0")])  # a job's exit status
    # Handed out, never an attempt: counted apart.
    metrics.observe(job(a, b), [Done(execution_id=a.id, outcome="refused")])
    metrics.observe(job(b), [Done(execution_id=b.id, outcome="not_started")])
    text = metrics.render({"in_flight": ("Running.", 2), "processes_started_total": ("P.", 1)})
    lines = text.splitlines()
    assert [line for line in lines if line.startswith("django_tasks_fs_attempts_total")] == [
        'django_tasks_fs_attempts_total{backend="default",queue="default",'
        'task="app.tasks.a",outcome="succeeded"} 2',
        'django_tasks_fs_attempts_total{backend="default",queue="emails",'
        'task="app.tasks.\\"b\\"",outcome="retry"} 1',
    ]
    assert "# TYPE django_tasks_fs_not_run_total counter" in lines
    assert (
        'django_tasks_fs_not_run_total{backend="default",queue="default",'
        'task="app.tasks.a",reason="refused"} 1'
    ) in lines
    assert (
        'django_tasks_fs_not_run_total{backend="default",queue="emails",'
        'task="app.tasks.\\"b\\"",reason="not_started"} 1'
    ) in lines
    series = 'django_tasks_fs_attempt_duration_seconds_bucket{backend="default",queue="default",task="app.tasks.a"'
    assert f'{series},le="0.01"}} 0' in lines
    assert f'{series},le="0.025"}} 1' in lines
    assert f'{series},le="+Inf"}} 1' in lines  # the job reported no duration
    assert "# TYPE django_tasks_fs_attempt_duration_seconds histogram" in lines
    assert "# TYPE django_tasks_fs_in_flight gauge" in lines
    assert "django_tasks_fs_in_flight 2" in lines
    assert "# TYPE django_tasks_fs_processes_started_total counter" in lines
    assert text.endswith("\n")
