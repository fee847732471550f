"""Anchor D: django-ox's OxBackend on SQLite, drained by ox_worker --batch."""

from __future__ import annotations

import os

SECRET_KEY = "anchor-benchmark-only"
DEBUG = False
USE_TZ = True
INSTALLED_APPS = ["django_ox"]

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

TASKS = {"default": {"BACKEND": "django_ox.backend.OxBackend"}}

LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
