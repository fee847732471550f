"""Cloud Scheduler's unix-cron schedules, evaluated in a job's time zone.

Google accepts five fields. For fast tests the emulator can also accept a six-field
form with seconds first (``*/2 * * * * *`` = every two seconds) when started with
``seconds_cron=True``; Google would refuse it, so it is off by default.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

DEFAULT_TIME_ZONE = "Etc/UTC"


class InvalidSchedule(ValueError):
    """The schedule or time zone is not one Cloud Scheduler accepts."""


def zone(time_zone: str) -> ZoneInfo:
    """The time zone of a job (UTC when empty); InvalidSchedule if unknown."""
    try:
        return ZoneInfo(time_zone or DEFAULT_TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidSchedule(f"Unknown time zone {time_zone!r}.") from None


def validate(schedule: str, time_zone: str, *, seconds: bool = False) -> None:
    """Raise InvalidSchedule unless the schedule and time zone are usable."""
    next_slot(schedule, time_zone, datetime.now(UTC), seconds=seconds)


def next_slot(schedule: str, time_zone: str, after: datetime, *, seconds: bool = False) -> datetime:
    """The first slot strictly after ``after``, in UTC."""
    fields = schedule.split()
    if len(fields) == 6 and not seconds:
        raise InvalidSchedule(
            f"Schedule {schedule!r} has a seconds field; Cloud Scheduler takes 5-field "
            "unix-cron (start the emulator with seconds_cron=True to allow it in tests)."
        )
    if len(fields) not in (5, 6):
        raise InvalidSchedule(f"Schedule {schedule!r} is not a 5-field unix-cron expression.")
    start = after.astimezone(zone(time_zone))
    try:
        slot = croniter(schedule, start, second_at_beginning=len(fields) == 6).get_next(datetime)
    except (ValueError, KeyError) as exc:
        raise InvalidSchedule(f"Invalid schedule {schedule!r}: {exc}.") from None
    if not isinstance(slot, datetime):
        raise InvalidSchedule(f"Invalid schedule {schedule!r}.")
    return slot.astimezone(UTC)
