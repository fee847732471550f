"""scheduling.slots: the check on a slot Cloud Scheduler claims (moved from views)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from django_tasks_fs.scheduling.slots import MAX_SLOT_SKEW, is_slot_of, parse_slot
from django_tasks_fs.store import ScheduledTask

CREATED = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def schedule(expression: str = "0 * * * *", time_zone: str = "UTC") -> ScheduledTask:
    return ScheduledTask(
        name="hourly",
        task_path="tests.tasks.noop",
        schedule=expression,
        time_zone=time_zone,
        backend="default",
        created_at=CREATED,
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-24T10:00:00Z", datetime(2026, 11, 24, 10, 0, tzinfo=UTC)),
        ("2026-11-24T11:00:00+01:00", datetime(2026, 11, 24, 10, 0, tzinfo=UTC)),
    ],
)
def test_parse_slot_in_utc(value: str, expected: datetime) -> None:
    assert parse_slot(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "Invalid isoformat"),
        ("2026-11-24T10:00:00", "must carry a time zone"),
        ("0001-01-01T00:00+14:00", "out of range"),
        ("1969-12-31T23:59:00Z", "out of range"),
    ],
)
def test_parse_slot_refuses(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_slot(value)


def test_a_slot_of_the_cron_within_the_bounds() -> None:
    assert is_slot_of(schedule(), datetime(2026, 11, 24, 10, 0, tzinfo=UTC), now=NOW)
    assert not is_slot_of(schedule(), datetime(2026, 11, 24, 10, 1, tzinfo=UTC), now=NOW)


def test_in_the_schedules_time_zone() -> None:
    paris_ten = schedule("0 10 * * *", "Europe/Paris")  # 09:00 UTC in November
    assert is_slot_of(paris_ten, datetime(2026, 11, 24, 9, 0, tzinfo=UTC), now=NOW)
    assert not is_slot_of(paris_ten, datetime(2026, 11, 24, 10, 0, tzinfo=UTC), now=NOW)


def test_no_invented_slots_before_the_schedule_or_in_the_future() -> None:
    before = CREATED - MAX_SLOT_SKEW - timedelta(hours=1)
    assert not is_slot_of(schedule(), before.replace(minute=0), now=NOW)
    assert is_slot_of(schedule(), CREATED, now=NOW)
    assert not is_slot_of(schedule(), NOW + timedelta(hours=1), now=NOW)
    assert is_slot_of(schedule(), NOW, now=NOW - timedelta(minutes=4))
