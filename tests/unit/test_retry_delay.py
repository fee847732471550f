"""How long a failed attempt waits: the backend's policy (backends.base.default_retry_delay)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.tasks import task_backends

from django_tasks_fs.backends.base import default_retry_delay


@pytest.mark.parametrize(
    ("attempt", "seconds"), [(0, 0.5), (1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (50, 3.0)]
)
def test_exponential_backoff_capped(attempt: int, seconds: float) -> None:
    assert default_retry_delay(attempt, base=0.5, maximum=3.0) == timedelta(seconds=seconds)


def test_a_local_backend_backs_off_with_its_options() -> None:
    # tests/settings.py: retry_backoff_seconds 0.05, retry_backoff_max_seconds 0.2
    backend: Any = task_backends["default"]
    assert backend.retry_delay(1) == timedelta(seconds=0.05)
    assert backend.retry_delay(9) == timedelta(seconds=0.2)


def test_google_cloud_leaves_the_backoff_to_the_platform() -> None:
    backend: Any = task_backends["cloud"]
    assert backend.retry_delay(3) == timedelta(0)
