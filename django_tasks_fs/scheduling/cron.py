"""Cron arithmetic with croniter, in the schedule's time zone.

croniter (and dateutil under it) is imported on first use, not with this module: a
worker imports the scheduling code at start-up but needs croniter only once a
schedule exists (worker start-up is measured against its floor in benchmarks/).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: At most this many slots are computed in one go (a 1-minute cron over a long outage).
MAX_SLOTS = 10_000


def _croniter() -> Any:
    """The croniter class (imported on first use: see the module docstring)."""
    from croniter import croniter

    return croniter


def validate_cron(expression: str) -> str:
    """Return the expression, or raise ValueError saying what a valid one looks like."""
    if (
        not isinstance(expression, str)
        or len(expression.split()) != 5
        or not _croniter().is_valid(expression)
    ):
        raise ValueError(
            f"Invalid cron expression {expression!r}: use 5 fields "
            f"'minute hour day-of-month month day-of-week', e.g. '*/5 * * * *'."
        )
    return expression


def validate_time_zone(name: str) -> ZoneInfo:
    """Return the zone, or raise ValueError naming it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(
            f"Unknown time zone {name!r}: use an IANA name such as 'Europe/Paris' or 'UTC'."
        ) from None


def slots_between(
    expression: str, time_zone: str, after: datetime, until: datetime
) -> list[datetime]:
    """Slots s with after < s <= until, in UTC, oldest first."""
    zone = validate_time_zone(time_zone)
    iterator = _croniter()(expression, after.astimezone(zone))
    slots: list[datetime] = []
    while len(slots) < MAX_SLOTS:
        slot = iterator.get_next(datetime)
        if slot > until:
            break
        slots.append(slot.astimezone(UTC))
    return slots


def next_slot(expression: str, time_zone: str, after: datetime) -> datetime:
    """The first slot strictly after ``after``, in UTC."""
    zone = validate_time_zone(time_zone)
    slot: datetime = _croniter()(expression, after.astimezone(zone)).get_next(datetime)
    return slot.astimezone(UTC)
