"""The demo's tasks: one of each behaviour worth seeing."""

from __future__ import annotations

import time
from typing import Any

from django.tasks import TaskContext, task

from django_tasks_fs import is_task_cancelled


@task
def add(a: int, b: int) -> int:
    return a + b


@task(takes_context=True)
def flaky_upload(context: TaskContext[Any, Any], name: str) -> str:
    """Fails twice (a flaky network), then succeeds on the third attempt."""
    if context.attempt < 3:
        raise ConnectionError(f"upload of {name} timed out (attempt {context.attempt})")
    return f"uploaded {name} on attempt {context.attempt}"


@task
def broken_report() -> None:
    raise ValueError("the report template is missing")


@task(takes_context=True)
def long_export(context: TaskContext[Any, Any]) -> str:
    """Works in small steps and stops cleanly when cancelled."""
    for step in range(600):
        if is_task_cancelled(context, refresh=True):
            return f"stopped at step {step}"
        time.sleep(0.1)
    return "exported"


@task(queue_name="reports")
def nightly_digest() -> str:
    return "digest sent"
