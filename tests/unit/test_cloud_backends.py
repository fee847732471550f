"""Google Cloud backends: configuration, derived URLs, cached retry limits (no network)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import caches

from django_tasks_fs.backends import CloudRunJobsBackend, CloudTasksBackend
from django_tasks_fs.gcp.errors import GoogleCloudError

GOOD = {
    "project_id": "p",
    "location": "europe-west1",
    "base_url": "https://app.example.com/tasks",
    "oidc_service_account": "invoker@p.iam.gserviceaccount.com",
}


def test_required_options_are_reported() -> None:
    messages = CloudTasksBackend("cloud", {"OPTIONS": {}}).check()
    assert sorted(m.msg for m in messages if m.id == "django_tasks_fs.E006") == sorted(
        f"TASKS['cloud']['OPTIONS'][{key!r}] is required by CloudTasksBackend."
        for key in ("project_id", "location", "base_url", "oidc_service_account")
    )


def test_local_only_options_are_refused() -> None:
    (message,) = CloudTasksBackend("cloud", {"OPTIONS": {**GOOD, "max_workers": 3}}).check()
    assert message.id == "django_tasks_fs.E001"


def test_derived_urls_and_audience() -> None:
    backend = CloudTasksBackend("cloud", {"OPTIONS": GOOD})
    assert backend.check() == []
    assert backend.execute_url == "https://app.example.com/tasks/execute/"
    assert backend.schedule_url == "https://app.example.com/tasks/schedule/"
    assert backend.audience == "https://app.example.com"
    custom = CloudTasksBackend(
        "c", {"OPTIONS": {**GOOD, "oidc_audience": "aud", "execute_url": "https://x/e"}}
    )
    assert custom.audience == "aud"
    assert custom.execute_url == "https://x/e"


def test_capabilities() -> None:
    tasks = CloudTasksBackend("a", {"OPTIONS": GOOD})
    jobs = CloudRunJobsBackend("b", {"OPTIONS": GOOD})
    assert (tasks.supports_defer, tasks.supports_force_cancel, tasks.supports_priority) == (
        True,
        False,
        False,
    )
    assert (jobs.supports_defer, jobs.supports_force_cancel, jobs.supports_priority) == (
        False,
        True,
        False,
    )


class Counting(CloudTasksBackend):
    calls: list[str]

    def platform_max_attempts(self, queue: str) -> int | None:
        self.calls.append(queue)
        return None if queue == "unlimited" else 5


def test_retry_limits_are_cached_per_backend_and_queue(settings: Any) -> None:
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    caches["default"].clear()
    one = Counting("one", {"OPTIONS": {**GOOD, "queue_aliases": {"mail": "mail-q"}}})
    two = Counting("two", {"OPTIONS": GOOD})
    one.calls, two.calls = [], []
    assert one.max_attempts_for("mail") == 5
    assert one.max_attempts_for("mail") == 5
    assert one.max_attempts_for("unlimited") is None
    assert one.max_attempts_for("unlimited") is None  # None is cached too
    assert two.max_attempts_for("mail") == 5  # another backend: its own cache entry
    assert one.calls == ["mail-q", "unlimited"]
    assert two.calls == ["mail"]


def test_unreadable_retry_limit_means_unlimited(settings: Any) -> None:
    class Failing(CloudTasksBackend):
        def platform_max_attempts(self, queue: str) -> int | None:
            raise GoogleCloudError("boom")

    assert Failing("f", {"OPTIONS": GOOD}).max_attempts_for("q") is None


@pytest.mark.parametrize("ttl", [0, -1])
def test_cache_can_be_disabled(ttl: int) -> None:
    backend = Counting("one", {"OPTIONS": {**GOOD, "cache_ttl_max_attempts": ttl}})
    backend.calls = []
    backend.max_attempts_for("q")
    backend.max_attempts_for("q")
    assert backend.calls == ["q", "q"]
