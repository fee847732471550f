"""Cron schedules: the public functions, cron arithmetic, slot firing, local cron."""

from __future__ import annotations

from .api import delete_scheduled_task, rename_scheduled_task, schedule_task

__all__ = ["delete_scheduled_task", "rename_scheduled_task", "schedule_task"]
