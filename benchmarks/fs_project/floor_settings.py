"""Bare Django settings of the start-up floor (benchmarks/startup.py): no app of ours."""

from __future__ import annotations

SECRET_KEY = "benchmark-only"
USE_TZ = True
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
LOGGING_CONFIG = None
