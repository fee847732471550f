"""Settings of the demo project: one ProcessBackend on the Firestore emulator."""

from __future__ import annotations

import os

SECRET_KEY = "demo-only"
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["django_tasks_fs"]
DATABASES: dict[str, dict[str, str]] = {}
LOGGING_CONFIG = None

TASKS = {
    "default": {
        "BACKEND": "django_tasks_fs.backends.ProcessBackend",
        "QUEUES": ["default", "reports"],
        "OPTIONS": {
            "project_id": os.environ.get("DEMO_PROJECT", "demo-project"),
            "collection_prefix": "demo_",
            "max_attempts": 3,
            "retry_backoff_seconds": 0.5,
            "heartbeat_interval_seconds": 0.5,
            "heartbeat_timeout_seconds": 5,
            "poll_interval_seconds": 0.2,
            "max_workers": 2,
        },
    }
}
