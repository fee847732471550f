"""Cron slots in a job's time zone (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from django_tasks_fs.emulators.gcloud.cron import InvalidSchedule, next_slot


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "time_zone", "after", "expected"),
    [
        ("*/15 * * * *", "", utc(2024, 5, 1, 10, 7), utc(2024, 5, 1, 10, 15)),
        ("0 9 * * *", "Etc/UTC", utc(2024, 5, 1, 9, 0), utc(2024, 5, 2, 9, 0)),
        # 09:00 in Paris is 08:00 UTC in winter and 07:00 UTC in summer.
        ("0 9 * * *", "Europe/Paris", utc(2024, 3, 30, 12), utc(2024, 3, 31, 7)),
        ("0 9 * * *", "Europe/Paris", utc(2024, 1, 10, 12), utc(2024, 1, 11, 8)),
        ("0 9 * * 1", "America/New_York", utc(2024, 5, 1), utc(2024, 5, 6, 13)),
        ("0 0 1 * *", "Asia/Tokyo", utc(2024, 5, 1, 0, 0), utc(2024, 5, 31, 15)),
    ],
)
def test_next_slot(schedule: str, time_zone: str, after: datetime, expected: datetime) -> None:
    assert next_slot(schedule, time_zone, after) == expected


def test_seconds_field_only_when_allowed() -> None:
    with pytest.raises(InvalidSchedule, match="seconds field"):
        next_slot("*/2 * * * * *", "", utc(2024, 5, 1))

    assert next_slot("*/2 * * * * *", "", utc(2024, 5, 1, 0, 0, 1), seconds=True) == utc(
        2024, 5, 1, 0, 0, 2
    )


@pytest.mark.parametrize(
    ("schedule", "time_zone"),
    [("every 5 minutes", ""), ("61 * * * *", ""), ("* * * *", ""), ("* * * * *", "Mars/Base")],
)
def test_invalid_schedules(schedule: str, time_zone: str) -> None:
    with pytest.raises(InvalidSchedule):
        next_slot(schedule, time_zone, utc(2024, 5, 1))
