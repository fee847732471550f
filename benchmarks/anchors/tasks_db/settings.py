"""Anchor A: django-tasks-db's DatabaseBackend on SQLite, drained by db_worker."""

from __future__ import annotations

import os

SECRET_KEY = "anchor-benchmark-only"
DEBUG = False
USE_TZ = True
INSTALLED_APPS = ["django_tasks_db"]

# The runner creates a fresh file per run and passes its path here.
# Same SQLite options for every anchor: WAL so the runner's read-only progress
# polls never block a writer, IMMEDIATE so read-then-write transactions wait on
# the busy timeout instead of failing with "database is locked".
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

TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
