"""The Django admin over Firestore: task executions and scheduled tasks.

Both are registered in ``admin.site``; to use a custom AdminSite, register
``TaskExecutionAdmin`` and ``ScheduledTaskAdmin`` for the placeholder models in
``django_tasks_fs.models`` there.
"""

from __future__ import annotations

from django.contrib import admin

from ..models import ScheduledTask, TaskExecution
from .executions import TaskExecutionAdmin
from .schedules import ScheduledTaskAdmin

__all__ = ["ScheduledTaskAdmin", "TaskExecutionAdmin"]

admin.site.register(TaskExecution, TaskExecutionAdmin)
admin.site.register(ScheduledTask, ScheduledTaskAdmin)
