"""Django settings for the drain benchmark of django-tasks-fs (ProcessBackend, cloud_tasks mode)."""

from __future__ import annotations

import os

SECRET_KEY = "benchmark-only"
USE_TZ = True
INSTALLED_APPS = ["django_tasks_fs"]
DATABASES: dict[str, dict[str, str]] = {}
LOGGING_CONFIG = None
TASKS = {
    "default": {
        "BACKEND": "django_tasks_fs.backends.ProcessBackend",
        "OPTIONS": {
            "project_id": os.environ.get("BENCH_PROJECT", "bench"),
            "max_workers": int(os.environ.get("BENCH_WORKERS", "2")),
            "batch_size": int(os.environ.get("BENCH_BATCH", "50")),
            "poll_interval_seconds": 0.05,
        },
    }
}
