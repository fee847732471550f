"""The benchmark's task: does nothing, so the drain measures the queue alone."""

from __future__ import annotations

from django.tasks import task


@task
def noop() -> None:
    return None
