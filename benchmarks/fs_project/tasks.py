"""The benchmark's task."""

from __future__ import annotations

from django.tasks import task


@task
def noop() -> None:
    return None


@task
def stamp(path: str) -> None:
    """Append the wall-clock time the body started (the pickup benchmark)."""
    import time

    with open(path, "a") as out:
        out.write(f"{time.time()}\n")
