"""Which instants are slots of a schedule: the check on a slot Cloud Scheduler claims.

The ``schedule/`` endpoint is told the slot by a header; anything that is not a real
slot of the schedule (malformed, in the future, before the schedule existed, off its
cron) is refused, so a caller cannot invent slots to enqueue extra executions.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from croniter import croniter

from ..store import ScheduledTask
from .cron import validate_time_zone

#: A slot may not be in the future by more than this (clock skew).
MAX_SLOT_SKEW = timedelta(minutes=5)
#: No schedule fires before this; older schedule times are refused.
EARLIEST_SLOT = datetime(1970, 1, 1, tzinfo=UTC)


def parse_slot(value: str) -> datetime:
    """An ISO 8601 schedule time (``X-CloudScheduler-ScheduleTime``) in UTC; ValueError
    if it is malformed, has no time zone or is out of range."""
    slot = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if slot.tzinfo is None:
        raise ValueError("the schedule time must carry a time zone")
    try:
        slot = slot.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+14:00
        raise ValueError("the schedule time is out of range") from None
    if slot < EARLIEST_SLOT:
        raise ValueError("the schedule time is out of range")
    return slot


def is_slot_of(schedule: ScheduledTask, slot: datetime, *, now: datetime) -> bool:
    """Whether ``slot`` (UTC) is one of ``schedule``'s, neither in the future nor
    before the schedule existed (each give or take MAX_SLOT_SKEW)."""
    # The bounds also keep the conversion to the schedule's time zone in range.
    earliest = (schedule.created_at or EARLIEST_SLOT) - MAX_SLOT_SKEW
    if not earliest <= slot <= now + MAX_SLOT_SKEW:
        return False
    local = slot.astimezone(validate_time_zone(schedule.time_zone))
    return bool(croniter.match(schedule.schedule, local))
