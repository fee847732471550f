"""Declared queue and job settings: what OPTIONS may say about a Cloud Tasks queue
(``queue_settings``) or a Cloud Run job (``job_settings``), and how that differs from
the live resource. Pure: no I/O, no Google client (the adapters read and write).

A resource's settings are a flat mapping of Google's field path to a value, e.g.
``{"retry_config.max_attempts": 5, "retry_config.min_backoff": timedelta(seconds=1)}``,
so the diff (drift.py), the update mask and the message to send all come from one place.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from .drift import Settings, show

#: The key that declares settings for every queue / job of a backend.
ALL = "*"


@dataclass(frozen=True, slots=True, kw_only=True)
class Setting:
    """One declarable field: where it is in Google's resource and what it accepts."""

    path: str  #: Google's field path in the Queue / Job
    expected: str  #: what it accepts, in words (for the check message)
    valid: Callable[[Any], bool]
    duration: bool = False  #: a number of seconds or a timedelta, kept as a timedelta
    remote: bool = True  #: False: a setting we apply ourselves, not a field of the resource


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _whole(low: int, high: int | None = None) -> Callable[[Any], bool]:
    def valid(value: Any) -> bool:
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and low <= value
            and (high is None or value <= high)
        )

    return valid


def _seconds(
    low: float, high: float | None = None, *, low_open: bool = False
) -> Callable[..., bool]:
    def valid(value: Any) -> bool:
        if isinstance(value, timedelta):
            value = value.total_seconds()
        if not _number(value):
            return False
        above = value > low if low_open else value >= low
        return above and (high is None or value <= high)

    return valid


#: Cloud Tasks limits (https://cloud.google.com/tasks/docs/reference/rpc/google.cloud.tasks.v2).
QUEUE_SETTINGS: dict[str, Setting] = {
    s.path: s
    for s in (
        Setting(
            path="rate_limits.max_dispatches_per_second",
            expected="a number > 0 and <= 500",
            valid=lambda v: _number(v) and 0 < v <= 500,
        ),
        Setting(
            path="rate_limits.max_concurrent_dispatches",
            expected="a whole number from 1 to 5000",
            valid=_whole(1, 5000),
        ),
        Setting(
            path="retry_config.max_attempts",
            expected="a whole number >= 1, or -1 for unlimited",
            valid=lambda v: v == -1 or _whole(1)(v),
        ),
        Setting(
            path="retry_config.max_retry_duration",
            expected="a number of seconds >= 0 (0: no limit) or a timedelta",
            valid=_seconds(0),
            duration=True,
        ),
        Setting(
            path="retry_config.min_backoff",
            expected="a number of seconds > 0 or a timedelta",
            valid=_seconds(0, low_open=True),
            duration=True,
        ),
        Setting(
            path="retry_config.max_backoff",
            expected="a number of seconds > 0 or a timedelta",
            valid=_seconds(0, low_open=True),
            duration=True,
        ),
        Setting(
            path="retry_config.max_doublings",
            expected="a whole number >= 1",
            valid=_whole(1),
        ),
        Setting(
            path="dispatch_deadline",
            expected="a number of seconds from 15 to 1800 or a timedelta",
            valid=_seconds(15, 1800),
            duration=True,
            remote=False,  # Task.dispatch_deadline: set on each task this backend creates
        ),
    )
}

#: Cloud Run job fields, by the flat name OPTIONS uses.
JOB_SETTINGS: dict[str, Setting] = {
    "timeout": Setting(
        path="template.template.timeout",
        expected="a number of seconds from 1 to 604800 (168 h) or a timedelta",
        valid=_seconds(1, 168 * 3600),
        duration=True,
    ),
    "max_retries": Setting(
        path="template.template.max_retries",
        expected="a whole number from 0 to 10",
        valid=_whole(0, 10),
    ),
    "parallelism": Setting(
        path="template.parallelism",
        expected="a whole number >= 0 (0: as many as possible)",
        valid=_whole(0),
    ),
}
#: Paths we apply ourselves (not fields of the live resource; never in a diff).
LOCAL_PATHS = frozenset(s.path for s in QUEUE_SETTINGS.values() if not s.remote)
#: Fields people reach for that no declaration can set, and why.
NOT_SETTABLE = {
    "rate_limits.max_burst_size": "is output only: Cloud Tasks derives it from "
    "max_dispatches_per_second.",
    "state": "changes only by pausing or resuming the queue (PauseQueue / ResumeQueue).",
    "task_count": "is set to 1 on each run this library starts.",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Issue:
    """One invalid declaration: where (a key path under the option) and why."""

    where: str  #: e.g. "['emails']['retry_config']['max_attempts']"
    message: str
    hint: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Declarations:
    """A backend's parsed declarations: resource name -> settings (``*`` applied)."""

    by_name: Mapping[str, Settings]

    def settings(self, name: str) -> Settings:
        return self.by_name.get(name, {})

    def remote(self, name: str) -> dict[str, Any]:
        """The settings that are fields of the resource (what plan/apply compare)."""
        return {p: v for p, v in self.settings(name).items() if p not in LOCAL_PATHS}


def _value(setting: Setting, value: Any) -> Any:
    if setting.duration and not isinstance(value, timedelta):
        return timedelta(seconds=value)
    if setting.path == "rate_limits.max_dispatches_per_second":
        return float(value)
    return value


#: The messages of a Queue that queue_settings nests, as Google does.
QUEUE_GROUPS = frozenset(p.split(".", 1)[0] for p in QUEUE_SETTINGS if "." in p)


def _flatten_queue(raw: Mapping[str, Any]) -> dict[str, Any]:
    """``{"retry_config": {"max_attempts": 5}}`` -> ``{"retry_config.max_attempts": 5}``."""
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, Mapping) and key in QUEUE_GROUPS:
            for sub, inner in value.items():
                flat[f"{key}.{sub}"] = inner
        else:
            flat[str(key)] = value
    return flat


def _key_path(path: str) -> str:
    return "".join(f"[{part!r}]" for part in path.split("."))


def parse(
    raw: Mapping[str, Any],
    *,
    jobs: bool,
    names: Mapping[str, str],
) -> tuple[Declarations, list[Issue]]:
    """Parse ``queue_settings`` (``jobs=False``) or ``job_settings`` (``jobs=True``).

    ``names``: every key a declaration may use (a queue name of QUEUES or of
    queue_aliases, or a Cloud Tasks queue / Cloud Run job name) -> the resource it
    names. ``*`` applies to every resource; a resource's own keys win.
    """
    issues: list[Issue] = []
    known = JOB_SETTINGS if jobs else QUEUE_SETTINGS
    noun = "Cloud Run job" if jobs else "queue"
    resources = sorted(set(names.values()))
    parsed: dict[str, dict[str, Any]] = {}
    seen: dict[str, str] = {}  # resource -> the key that declared it
    for key, block in raw.items():
        where = f"[{key!r}]"
        if key != ALL and key not in names:
            issues.append(
                Issue(
                    where=where,
                    message=f"names {key!r}, which is not a {noun} of this backend.",
                    hint=f"Use '*' (every one) or one of: {', '.join(map(repr, resources))}"
                    " (QUEUES and queue_aliases).",
                )
            )
            continue
        if not isinstance(block, Mapping):
            issues.append(
                Issue(
                    where=where,
                    message=f"is {block!r}; expected a dict of settings.",
                    hint=f"Write e.g. {_example(jobs)}.",
                )
            )
            continue
        resource = ALL if key == ALL else names[key]
        if resource in seen:
            issues.append(
                Issue(
                    where=where,
                    message=f"declares {resource!r} again (already declared as {seen[resource]!r}).",
                    hint=f"Declare each {noun} once, by one of its names.",
                )
            )
            continue
        seen[resource] = key
        flat = dict(block) if jobs else _flatten_queue(block)
        values: dict[str, Any] = {}
        for name, value in flat.items():
            setting = known.get(name)
            spot = where + _key_path(name)
            if setting is None:
                issues.append(
                    Issue(
                        where=spot,
                        message=NOT_SETTABLE.get(name, "is not a setting this library manages."),
                        hint=f"Valid settings: {', '.join(_shown(jobs))}.",
                    )
                )
                continue
            if not setting.valid(value):
                issues.append(
                    Issue(
                        where=spot,
                        message=f"is {value!r}; expected {setting.expected}.",
                        hint=f"Set it to {setting.expected}, or remove it to leave the live value.",
                    )
                )
                continue
            values[setting.path] = _value(setting, value)
        parsed[resource] = values
    common = parsed.pop(ALL, {})
    by_name = {name: {**common, **parsed.get(name, {})} for name in resources}
    for name, settings in by_name.items():
        low = settings.get("retry_config.min_backoff")
        high = settings.get("retry_config.max_backoff")
        if low is not None and high is not None and low > high:
            issues.append(
                Issue(
                    where=f"[{name!r}]['retry_config']",
                    message=f"has min_backoff {show(low)} above max_backoff {show(high)}.",
                    hint="min_backoff must be <= max_backoff.",
                )
            )
    return Declarations(by_name={n: s for n, s in by_name.items() if s}), issues


def _shown(jobs: bool) -> list[str]:
    if jobs:
        return list(JOB_SETTINGS)
    return [p.replace(".", "/") for p in QUEUE_SETTINGS]


def _example(jobs: bool) -> str:
    if jobs:
        return "{'timeout': 3600, 'max_retries': 2}"
    return "{'rate_limits': {'max_concurrent_dispatches': 10}, 'retry_config': {'max_attempts': 5}}"
