"""Anchor B: django-tasks-google's ProcessBackend on SQLite, drained by run_tasks."""

from __future__ import annotations

import os

SECRET_KEY = "anchor-benchmark-only"
DEBUG = False
USE_TZ = True
INSTALLED_APPS = ["django_tasks_google"]

# Identical SQLite options to the tasks-db anchor (see its settings.py).
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["BENCH_SQLITE_PATH"],
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        },
    }
}

# ProcessBackend: rows in TaskExecution, one spawned child process per attempt.
# mode="cloud_tasks" emulates Cloud Tasks (defer supported, no force cancel).
# max_workers=2 matches the 2-core benchmark machine. The default poll interval
# (1.0 s) would cap the drain at max_workers tasks/s, so it is shortened in the
# anchor's favour; run_tasks is also given the same values as explicit flags.
TASKS = {
    "default": {
        "BACKEND": "django_tasks_google.backends.ProcessBackend",
        "OPTIONS": {
            "mode": "cloud_tasks",
            "max_workers": int(os.environ.get("BENCH_MAX_WORKERS", "2")),
            "batch_size": int(os.environ.get("BENCH_MAX_WORKERS", "2")),
            "poll_interval_seconds": float(os.environ.get("BENCH_POLL_INTERVAL", "0.05")),
            "max_attempts": 1,
        },
    }
}

LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
