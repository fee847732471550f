"""Django settings for the test suite (and for the worker subprocesses it starts).

Each test points the backends at its own Firestore emulator project through
TEST_FIRESTORE_PROJECT (subprocesses) or the ``tasks_settings`` fixture (in-process).
"""

from __future__ import annotations

import os
import sys
from typing import Any

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = [
    "django_tasks_fs.admin_site.FirestoreAdminConfig",  # Django's admin, usable with no SQL database
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_tasks_fs",
]
# For the admin (tests/admin/); the task endpoints are CSRF-exempt.
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
STATIC_URL = "/static/"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGGING_CONFIG = None
ROOT_URLCONF = "tests.urls"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

PROJECT = os.environ.get("TEST_FIRESTORE_PROJECT", "tests-default")


def tasks_setting(
    project: str,
    *,
    base_url: str | None = None,
    certs_url: str | None = None,
    gcloud_host: str | None = None,
    store: str = "firestore",
) -> dict[str, Any]:
    """TASKS for one test project: ProcessBackends in both modes, run_once, and Cloud Tasks.

    The Cloud Tasks backend's URLs come from the arguments, else from the environment
    (worker subprocesses), else harmless placeholders. ``store="memory"`` keeps every
    backend's documents in this process's memory (no emulator, no subprocesses).
    """
    fast = {
        "project_id": project,
        "store": store,
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
    google = {
        "project_id": project,
        "store": store,
        "location": "us-central1",
        "base_url": base_url or os.environ.get("TEST_BASE_URL", "http://testserver/tasks/"),
        "oidc_service_account": "invoker@tests.iam.gserviceaccount.com",
        "oidc_certs_url": certs_url or os.environ.get("TEST_CERTS_URL", "http://127.0.0.1:9/certs"),
        "emulator_host": gcloud_host or os.environ.get("TEST_GCLOUD_HOST", "127.0.0.1:9"),
        "heartbeat_interval_seconds": 0.3,
        "heartbeat_timeout_seconds": 2.0,
        "cache_ttl_max_attempts": 0,
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
        "cloud": {
            "BACKEND": "django_tasks_fs.backends.CloudTasksBackend",
            "OPTIONS": {**google, "collection_prefix": "c_"},
        },
        "cloudjobs": {
            "BACKEND": "django_tasks_fs.backends.CloudRunJobsBackend",
            "QUEUES": ["e2e-job"],
            "OPTIONS": {
                **google,
                "collection_prefix": "r_",
                "command": [sys.executable, "-m", "django", "execute_task"],
            },
        },
        "once": {
            "BACKEND": "django_tasks_fs.backends.ProcessBackend",
            "OPTIONS": {**fast, "run_once": True, "collection_prefix": "o_"},
        },
    }


TASKS = tasks_setting(PROJECT)
