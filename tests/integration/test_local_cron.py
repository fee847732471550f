"""Local cron: each slot fires exactly once, across restarts and concurrent workers."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.tasks import TaskResultStatus

from django_tasks_fs import delete_scheduled_task, schedule_task
from django_tasks_fs.exceptions import NotJSONSerializable, ScheduleNotFound
from django_tasks_fs.scheduling.local import RESTART_WINDOW, LocalCron
from django_tasks_fs.store import ExecutionFilter
from tests import tasks

# A fixed instant, 30 s past a 5-minute slot. Every schedule these tests fire is
# backdated to before it (``created_before``): schedule_task() stamps created_at with
# Firestore's real time, and no slot before a schedule existed ever fires.
T0 = datetime(2026, 11, 24, 10, 0, 30, tzinfo=UTC)


def count(backend: Any) -> int:
    return int(backend.executions.count(ExecutionFilter(task_path="tests.tasks.echo")))


def created_before(backend: Any, name: str, instant: datetime) -> Any:
    """Backdate schedule ``name`` to a day before ``instant``, the fixed time the test ticks at."""
    return backend.schedules.update(
        name, lambda s: s.evolve(created_at=instant - timedelta(days=1))
    )


@pytest.fixture
def every_five(backend: Any) -> Any:
    schedule_task(tasks.echo, "*/5 * * * *", name="every-5", args=["tick"], kwargs={"n": 1})
    return created_before(backend, "every-5", T0)


def test_schedule_task_stores_and_updates(backend: Any) -> None:
    item = schedule_task(
        tasks.echo, "*/5 * * * *", name="every-5", time_zone="Europe/Paris", args=[1]
    )
    assert item.task_path == "tests.tasks.echo"
    assert item.backend == "default"
    assert backend.schedules.get("every-5") == item
    again = schedule_task(tasks.echo, "0 * * * *", name="every-5", enabled=False)
    assert again.schedule == "0 * * * *"
    assert not again.enabled
    assert again.created_at == item.created_at
    default_name = schedule_task(tasks.noop, "* * * * *")
    assert default_name.name == "noop"
    assert delete_scheduled_task("every-5") is True
    assert delete_scheduled_task("every-5") is False
    with pytest.raises(ScheduleNotFound):
        backend.schedules.get("every-5")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"schedule": "*/5 * * *"}, ValueError, "Invalid cron expression"),
        ({"schedule": "61 * * * *"}, ValueError, "Invalid cron expression"),
        ({"time_zone": "Mars/Olympus"}, ValueError, "Unknown time zone 'Mars/Olympus'"),
        ({"name": "bad name"}, ValueError, "Invalid scheduled task name"),
        ({"args": [{1}]}, NotJSONSerializable, r"args\[0\]: value of type set"),
        ({"queue_name": "nope"}, Exception, "Queue 'nope' is not valid"),
    ],
)
def test_schedule_task_rejects_bad_input(
    backend: Any, kwargs: dict[str, Any], error: type, message: str
) -> None:
    params: dict[str, Any] = {"schedule": "*/5 * * * *", "name": "x"}
    params.update(kwargs)
    schedule = params.pop("schedule")
    with pytest.raises(error, match=message):
        schedule_task(tasks.echo, schedule, **params)
    assert backend.schedules.list() == []


def test_fires_each_slot_once_across_ticks(backend: Any, every_five: Any) -> None:
    cron = LocalCron([backend], started=T0, catch_up=False)
    # The slot at 10:00 fell due 30 s before the worker started: inside the restart window.
    assert len(cron.tick(T0)) == 1
    assert count(backend) == 1
    assert cron.tick(T0 + timedelta(seconds=10)) == []
    fired = cron.tick(T0 + timedelta(minutes=5))  # 10:05
    assert len(fired) == 1
    assert fired[0].args == ["tick"]
    assert fired[0].kwargs == {"n": 1}
    assert backend.executions.get(fired[0].id).scheduled_task == "every-5"
    assert count(backend) == 2
    assert backend.schedules.get("every-5").last_slot == datetime(2026, 11, 24, 10, 5, tzinfo=UTC)


def test_exactly_once_across_a_restart(backend: Any, every_five: Any) -> None:
    first = LocalCron([backend], started=T0, catch_up=False)
    first.tick(T0 + timedelta(minutes=5))  # fires 10:00 and 10:05
    assert count(backend) == 2
    # Restart 20 s after the 10:05 slot fired: the new worker must not fire it again,
    # nor skip 10:10.
    second = LocalCron([backend], started=T0 + timedelta(minutes=5, seconds=20), catch_up=False)
    second.tick(T0 + timedelta(minutes=5, seconds=20))
    assert count(backend) == 2
    second.tick(T0 + timedelta(minutes=10))
    assert count(backend) == 3


def test_a_slot_due_during_a_quick_restart_still_fires(backend: Any, every_five: Any) -> None:
    first = LocalCron([backend], started=T0, catch_up=False)
    first.tick(T0)  # 10:00
    restart = datetime(2026, 11, 24, 10, 5, 20, tzinfo=UTC)  # 10:05 fell due while restarting
    assert restart - datetime(2026, 11, 24, 10, 5, tzinfo=UTC) < RESTART_WINDOW
    LocalCron([backend], started=restart, catch_up=False).tick(restart)
    assert count(backend) == 2


def test_concurrent_workers_fire_each_slot_once(backend: Any, every_five: Any) -> None:
    crons = [LocalCron([backend], started=T0, catch_up=False) for _ in range(8)]
    barrier = threading.Barrier(8)

    def run(cron: LocalCron) -> None:
        barrier.wait()
        for minutes in (0, 5, 10):
            cron.tick(T0 + timedelta(minutes=minutes))

    threads = [threading.Thread(target=run, args=(c,)) for c in crons]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert count(backend) == 3  # 10:00, 10:05, 10:10


def test_missed_slots_are_skipped_unless_catch_up(backend: Any, every_five: Any) -> None:
    LocalCron([backend], started=T0, catch_up=False).tick(T0)  # 10:00 fires
    down_until = T0 + timedelta(hours=1)  # no worker ran 10:05 .. 11:00
    LocalCron([backend], started=down_until, catch_up=False).tick(down_until)
    assert count(backend) == 2  # only 11:00 (inside the restart window)
    later = down_until + timedelta(hours=1, minutes=2)  # 11:05 .. 12:00 missed again
    LocalCron([backend], started=later, catch_up=False).tick(later)
    assert count(backend) == 2  # nothing in the restart window, and no catch-up
    LocalCron([backend], started=later, catch_up=True).tick(later)
    # catch-up fires only the newest missed slot (12:00), not a flood of twelve.
    assert count(backend) == 3
    assert backend.schedules.get("every-5").last_slot == datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_time_zone_is_honoured(backend: Any) -> None:
    schedule_task(tasks.echo, "0 9 * * *", name="every-5", time_zone="Europe/Paris")
    start = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
    created_before(backend, "every-5", start)
    cron = LocalCron([backend], started=start, catch_up=False)
    cron.tick(datetime(2026, 11, 24, 7, 59, tzinfo=UTC))
    assert count(backend) == 0
    cron.tick(datetime(2026, 11, 24, 8, 0, tzinfo=UTC))  # 09:00 in Paris (UTC+1 in November)
    assert count(backend) == 1


def test_disabled_schedules_do_not_fire(backend: Any) -> None:
    schedule_task(tasks.echo, "*/5 * * * *", name="every-5", enabled=False)
    created_before(backend, "every-5", T0)
    LocalCron([backend], started=T0, catch_up=True).tick(T0 + timedelta(minutes=30))
    assert count(backend) == 0


def test_fired_executions_run(backend: Any, every_five: Any) -> None:
    from django_tasks_fs.execution.attempt import Attempt

    fired = LocalCron([backend], started=T0, catch_up=False).tick(T0)
    assert len(fired) == 1
    Attempt(backend, fired[0].id, worker_id="w").run()
    stored = backend.executions.get(fired[0].id)
    assert stored.status == TaskResultStatus.SUCCESSFUL
    assert stored.return_value == {"args": ["tick"], "kwargs": {"n": 1}}


def test_a_slot_before_the_schedule_existed_never_fires(backend: Any, every_five: Any) -> None:
    backend.schedules.update("every-5", lambda s: s.evolve(created_at=T0))  # 10:00:30
    for catch_up in (False, True):
        assert (
            LocalCron([backend], started=T0, catch_up=catch_up).tick(T0 + timedelta(seconds=5))
            == []
        )
    assert count(backend) == 0
    assert (
        len(LocalCron([backend], started=T0, catch_up=False).tick(T0 + timedelta(minutes=5))) == 1
    )


def test_rename_keeps_the_schedule_and_its_history(backend: Any, every_five: Any) -> None:
    from django_tasks_fs import rename_scheduled_task

    LocalCron([backend], started=T0, catch_up=False).tick(T0)
    renamed = rename_scheduled_task("every-5", "five-minutely")
    assert renamed.name == "five-minutely"
    assert renamed.last_slot == datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    assert [s.name for s in backend.schedules.list()] == ["five-minutely"]
    with pytest.raises(ScheduleNotFound):
        rename_scheduled_task("every-5", "x")
    schedule_task(tasks.noop, "* * * * *", name="taken")
    with pytest.raises(ValueError, match="already exists"):
        rename_scheduled_task("five-minutely", "taken")
