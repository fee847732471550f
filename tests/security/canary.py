"""Callables that must never run as tasks: each leaves a file behind if called."""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Names of the canary modules that were imported (see import_canary.py).
IMPORTS: list[str] = []


def fire(path: str, *args: Any, **kwargs: Any) -> str:
    """A plain module-level function (not a @task): writes ``path`` if anything calls it."""
    Path(path).write_text("fired\n")
    return "fired"


class Impostor:
    """Quacks like a django.tasks.Task (call, using, func, ...) but is not one."""

    priority = 0
    queue_name = "default"
    backend = "default"
    run_after = None
    takes_context = False
    timeout = None
    func = staticmethod(fire)

    def using(self, **changes: Any) -> Impostor:
        return self

    def call(self, *args: Any, **kwargs: Any) -> Any:
        return fire(*args, **kwargs)


impostor = Impostor()
