"""Django settings for the test suite (and for the worker subprocesses it starts).

Each test points the backends at its own Firestore emulator project through
TEST_FIRESTORE_PROJECT (subprocesses) or the ``tasks_settings`` fixture (in-process).
"""

from __future__ import annotations

import os
from typing import Any

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django_tasks_fs",
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGGING_CONFIG = None

PROJECT = os.environ.get("TEST_FIRESTORE_PROJECT", "tests-default")


def tasks_setting(project: str) -> dict[str, Any]:
    """TASKS for one test project: a cloud_tasks-mode and a cloud_run_jobs-mode backend."""
    fast = {
        "project_id": project,
        "collection_prefix": "t_",
        "max_attempts": 3,
        "heartbeat_interval_seconds": 0.3,
        "heartbeat_timeout_seconds": 2.0,
        "retry_backoff_seconds": 0.05,
        "retry_backoff_max_seconds": 0.2,
        "poll_interval_seconds": 0.1,
        "max_workers": 2,
        "shutdown_grace_seconds": 5.0,
    }
    return {
        "default": {
            "BACKEND": "django_tasks_fs.backends.ProcessBackend",
            "QUEUES": ["default", "emails"],
            "OPTIONS": fast,
        },
        "jobs": {
            "BACKEND": "django_tasks_fs.backends.ProcessBackend",
            "OPTIONS": {**fast, "mode": "cloud_run_jobs", "collection_prefix": "j_"},
        },
        "once": {
            "BACKEND": "django_tasks_fs.backends.ProcessBackend",
            "OPTIONS": {**fast, "run_once": True, "collection_prefix": "o_"},
        },
    }


TASKS = tasks_setting(PROJECT)
