"""Sample tasks shared by the test suite."""

from __future__ import annotations

from typing import Any

from django.tasks import task


@task
def noop() -> None:
    return None


@task
def echo(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"args": list(args), "kwargs": kwargs}


@task
def failing(message: str = "boom") -> None:
    raise ValueError(message)
