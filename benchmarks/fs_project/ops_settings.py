"""Django settings for the operations benchmark (benchmarks/operations.py).

One backend, ``default``, of the kind named by ``BENCH_BACKEND``: ``local``
(ProcessBackend with the library's defaults, or the drain benchmark's options when
``BENCH_DRAIN_OPTIONS=1``), ``cloud_tasks`` (CloudTasksBackend delivering to
``BENCH_BASE_URL``) or ``cloud_run_jobs`` (CloudRunJobsBackend; queue ``default`` is job ``BENCH_JOB``).
"""

from __future__ import annotations

import os
import sys
from typing import Any

SECRET_KEY = "benchmark-only"
USE_TZ = True
INSTALLED_APPS = ["django_tasks_fs"]
DATABASES: dict[str, dict[str, str]] = {}
LOGGING_CONFIG = None
ROOT_URLCONF = "emulator.demo.urls"  # the library's endpoints under /tasks/
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

_kind = os.environ.get("BENCH_BACKEND", "local")
_options: dict[str, Any] = {"project_id": os.environ.get("BENCH_PROJECT", "bench")}
if _kind == "local":
    _backend = "ProcessBackend"
    if os.environ.get("BENCH_DRAIN_OPTIONS") == "1":
        _options.update(max_workers=2, batch_size=50, poll_interval_seconds=0.05)
else:
    _options.update(
        location="us-central1",
        base_url=os.environ.get("BENCH_BASE_URL", "http://127.0.0.1:9/tasks/"),
        oidc_service_account="invoker@bench.iam.gserviceaccount.com",
        oidc_certs_url=os.environ.get("BENCH_CERTS_URL", "http://127.0.0.1:9/certs"),
        emulator_host=os.environ.get("BENCH_GCLOUD_HOST", "127.0.0.1:9"),
    )
    if _kind == "cloud_tasks":
        _backend = "CloudTasksBackend"
    else:
        _backend = "CloudRunJobsBackend"
        _options["queue_aliases"] = {"default": os.environ.get("BENCH_JOB", "bench-job")}
        _options["command"] = [sys.executable, "-m", "django", "execute_task"]

TASKS = {
    "default": {
        "BACKEND": f"django_tasks_fs.backends.{_backend}",
        "QUEUES": ["default"],
        "OPTIONS": _options,
    }
}
