"""How live settings differ from declared ones, and how to show it. Pure: no I/O.

Settings on both sides are flat mappings of Google's field path to a value (see
declared.py); a field that is not declared is never a difference.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

Settings = Mapping[str, Any]  #: Google field path -> declared or live value


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """One field whose live value differs from the declared one."""

    path: str
    live: Any  #: None: the resource does not exist yet
    declared: Any

    def __str__(self) -> str:
        if self.live is None:
            return f"{self.path}: {show(self.declared)}"
        return f"{self.path}: {show(self.live)} -> {show(self.declared)}"


def same(live: Any, declared: Any) -> bool:
    if isinstance(declared, float) or isinstance(live, float):
        return live is not None and math.isclose(float(live), float(declared), rel_tol=1e-9)
    return bool(live == declared)


def diff(live: Settings | None, declared: Settings) -> list[Change]:
    """The declared fields whose live value differs, in path order (all of them when the
    resource does not exist: ``live`` None). Fields not declared are never changes."""
    if live is None:
        return [Change(path=p, live=None, declared=v) for p, v in sorted(declared.items())]
    return [
        Change(path=p, live=live.get(p), declared=v)
        for p, v in sorted(declared.items())
        if not same(live.get(p), v)
    ]


def show(value: Any) -> str:
    """A value as Google's JSON shows it: durations as ``"300s"``, -1 as is."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
        return f"{seconds:g}s"
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value) if isinstance(value, str) else str(value)


def nested(settings: Settings) -> dict[str, Any]:
    """``{"a.b": 1}`` -> ``{"a": {"b": 1}}``: a message the official clients accept."""
    out: dict[str, Any] = {}
    for path, value in settings.items():
        *parents, leaf = path.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out
