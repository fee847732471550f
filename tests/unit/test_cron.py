"""Cron slots of the local scheduler in a schedule's time zone, across DST changes (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from django_tasks_fs.scheduling.cron import next_slot, slots_between


def utc(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2024, month, day, hour, minute, tzinfo=UTC)


def test_daily_slots_keep_their_local_hour_across_spring_forward() -> None:
    # 09:00 in Paris: 08:00 UTC before 31 March 2024, 07:00 UTC from that day on.
    assert slots_between("0 9 * * *", "Europe/Paris", utc(3, 29, 12), utc(4, 1, 12)) == [
        utc(3, 30, 8),
        utc(3, 31, 7),
        utc(4, 1, 7),
    ]


def test_daily_slots_keep_their_local_hour_across_fall_back() -> None:
    assert slots_between("0 9 * * *", "Europe/Paris", utc(10, 25, 12), utc(10, 28, 12)) == [
        utc(10, 26, 7),
        utc(10, 27, 8),
        utc(10, 28, 8),
    ]


@pytest.mark.parametrize(
    ("expression", "zone", "after", "expected"),
    [
        ("0 9 * * *", "Europe/Paris", utc(3, 30, 12), utc(3, 31, 7)),
        ("0 9 * * *", "UTC", utc(3, 30, 12), utc(3, 31, 9)),
        ("*/5 * * * *", "America/New_York", utc(3, 10, 6, 58), utc(3, 10, 7)),
    ],
)
def test_next_slot(expression: str, zone: str, after: datetime, expected: datetime) -> None:
    assert next_slot(expression, zone, after) == expected
