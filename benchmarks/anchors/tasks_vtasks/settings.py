"""Anchor C: django-vtasks' DatabaseTaskBackend on SQLite, drained by runworker."""

from __future__ import annotations

import os

SECRET_KEY = "anchor-benchmark-only"
DEBUG = False
USE_TZ = True
INSTALLED_APPS = ["django_vtasks", "django_vtasks.db"]

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

# The database mode; the package defaults otherwise (VTASKS_CONCURRENCY 20, one
# asyncio worker process). Only the "default" queue is consumed.
TASKS = {"default": {"BACKEND": "django_vtasks.backends.db.DatabaseTaskBackend"}}
VTASKS_QUEUES = ["default"]

LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
