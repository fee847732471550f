"""Backoff: how long to wait before a retry, as a task declares it (``@task(backoff=...)``)
and as an execution records it.

A task gives a constant (a timedelta or seconds), a ``Backoff`` value, or a callable
``(exception, task_result) -> delay | None``; policy.py validates and resolves it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.utils.module_loading import import_string

#: The longest delay a backoff may ask for (Cloud Tasks schedules at most 30 days ahead).
MAX_DELAY = timedelta(days=30)


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Exponential backoff: ``base * factor^(n-1)`` after failed attempt n, capped at
    ``maximum``; ``jitter`` (0 to 1) takes up to that fraction off each delay at random.
    ``Backoff(base=timedelta(seconds=30), factor=1)`` waits 30 s every time."""

    base: timedelta = timedelta(seconds=1)
    factor: float = 2.0
    maximum: timedelta | None = None
    jitter: float = 0.0

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.base, timedelta) or self.base < timedelta(0):
            problems.append(f"base must be a timedelta >= 0, not {self.base!r}")
        if isinstance(self.factor, bool) or not isinstance(self.factor, (int, float)):
            problems.append(f"factor must be a number >= 1, not {self.factor!r}")
        elif not 1 <= self.factor <= 1000:
            problems.append(f"factor must be a number from 1 to 1000, not {self.factor!r}")
        if self.maximum is not None and (
            not isinstance(self.maximum, timedelta) or self.maximum < timedelta(0)
        ):
            problems.append(f"maximum must be a timedelta >= 0 or None, not {self.maximum!r}")
        jitter_ok = isinstance(self.jitter, (int, float)) and not isinstance(self.jitter, bool)
        if not (jitter_ok and 0 <= self.jitter <= 1):
            problems.append(f"jitter must be a number from 0 to 1, not {self.jitter!r}")
        if problems:
            raise ValueError(f"Invalid Backoff: {'; '.join(problems)}.")

    def delay(self, attempt: int) -> timedelta:
        """The wait after failed attempt ``attempt`` (1 for the first)."""
        exponent = max(attempt - 1, 0)
        seconds = self.base.total_seconds() * math.pow(self.factor, min(exponent, 200))
        longest = (self.maximum or MAX_DELAY).total_seconds()
        seconds = min(seconds, longest, MAX_DELAY.total_seconds())
        if self.jitter:
            seconds -= seconds * self.jitter * random.random()
        return timedelta(seconds=seconds)

    def to_document(self) -> dict[str, Any]:
        return {
            "kind": "exponential",
            "base": self.base.total_seconds(),
            "factor": float(self.factor),
            "maximum": None if self.maximum is None else self.maximum.total_seconds(),
            "jitter": float(self.jitter),
        }

    @classmethod
    def from_document(cls, data: Mapping[str, Any]) -> Backoff:
        maximum = data.get("maximum")
        return cls(
            base=timedelta(seconds=float(data.get("base", 1.0))),
            factor=float(data.get("factor", 2.0)),
            maximum=None if maximum is None else timedelta(seconds=float(maximum)),
            jitter=float(data.get("jitter", 0.0)),
        )


#: What a task may give as ``backoff``: a constant delay (a timedelta or seconds), a
#: Backoff, or a callable ``(exception, task_result) -> timedelta | seconds | None``
#: (None: no further attempt).
BackoffSpec = timedelta | int | float | Backoff | Callable[..., Any]


def as_backoff(spec: Any) -> Backoff | None:
    """A constant or a Backoff as a Backoff; None for a callable."""
    if isinstance(spec, Backoff):
        return spec
    if isinstance(spec, timedelta):
        return Backoff(base=spec, factor=1)
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return Backoff(base=timedelta(seconds=spec), factor=1)
    return None


def callable_path(func: Any) -> str | None:
    """The dotted path that imports ``func`` back, or None (a lambda, a closure)."""
    module, qualname = getattr(func, "__module__", None), getattr(func, "__qualname__", "")
    if not module or not qualname or "<" in qualname:
        return None
    path = f"{module}.{qualname}"
    try:
        found = import_string(path)
    except Exception:
        return None
    return path if found is func else None


def as_delay(value: Any) -> timedelta | None:
    """A backoff callable's answer as a delay (None: no retry); ValueError if neither."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        delay = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        delay = timedelta(seconds=value)
    else:
        raise ValueError(f"a backoff must return a timedelta, seconds or None, not {value!r}")
    return min(max(delay, timedelta(0)), MAX_DELAY)
