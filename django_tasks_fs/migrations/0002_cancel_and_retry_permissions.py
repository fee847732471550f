"""Permissions to cancel or retry executions without the broader ``change`` one."""

from __future__ import annotations

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("django_tasks_fs", "0001_initial")]

    operations = [
        migrations.AlterModelOptions(
            name="taskexecution",
            options={
                "managed": False,
                "permissions": [
                    ("cancel_taskexecution", "Can cancel task executions"),
                    ("retry_taskexecution", "Can retry task executions"),
                ],
                "verbose_name": "task execution",
                "verbose_name_plural": "task executions",
            },
        ),
    ]
