"""Placeholder models: they give the admin its entries, content types and permissions.

No SQL table exists for them (``managed = False``); the data lives in Firestore and
the admin reads it through the store.
"""

from __future__ import annotations

from django.db import models


class TaskExecution(models.Model):
    """Stands for the Firestore execution documents in the admin and in permissions."""

    class Meta:
        managed = False
        verbose_name = "task execution"
        verbose_name_plural = "task executions"
        #: Finer than ``change_taskexecution`` (which still allows both).
        permissions = [
            ("cancel_taskexecution", "Can cancel task executions"),
            ("retry_taskexecution", "Can retry task executions"),
        ]

    def __str__(self) -> str:
        return f"task execution {self.pk}"


class ScheduledTask(models.Model):
    """Stands for the Firestore scheduled-task documents in the admin and in permissions."""

    class Meta:
        managed = False
        verbose_name = "scheduled task"
        verbose_name_plural = "scheduled tasks"

    def __str__(self) -> str:
        return f"scheduled task {self.pk}"
