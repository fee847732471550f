"""Settings of the demo project: one ProcessBackend on the Firestore emulator."""

from __future__ import annotations

import os

SECRET_KEY = "demo-only"
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["django_tasks_fs"]
DATABASES: dict[str, dict[str, str]] = {}
LOGGING_CONFIG = None
ROOT_URLCONF = "emulator.demo.urls"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

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
    },
    # The production path: Cloud Tasks (the local emulator) POSTs to /tasks/execute/.
    "cloud": {
        "BACKEND": "django_tasks_fs.backends.CloudTasksBackend",
        "OPTIONS": {
            "project_id": os.environ.get("DEMO_PROJECT", "demo-project"),
            "location": "europe-west1",
            "collection_prefix": "demo_",
            "base_url": os.environ.get("DEMO_BASE_URL", "http://127.0.0.1:8000/tasks/"),
            "oidc_service_account": "tasks-invoker@demo-project.iam.gserviceaccount.com",
            "oidc_certs_url": os.environ.get(
                "DEMO_CERTS_URL", "http://127.0.0.1:8124/oauth2/v1/certs"
            ),
            "emulator_host": os.environ.get("DEMO_GCLOUD_HOST", "127.0.0.1:8123"),
            "heartbeat_interval_seconds": 0.5,
            "heartbeat_timeout_seconds": 5,
        },
    },
}
