"""Per-task retry and timeout policy: its values, their validation, and the one place that
resolves them (task > backend OPTIONS > platform limit).

A task declares any of ``max_attempts``, ``backoff``, ``retry_on``, ``dont_retry_on``,
``timeout`` and ``run_once`` (``@task(...)`` or ``.using(...)``, see tasks.py); None
means "inherit". ``resolve()`` turns the task's values and what its backend offers
(``Defaults``) into what the new execution records: ``max_attempts``, ``run_once``,
``timeout_seconds`` and a ``retry_policy`` map (the backoff, the exception filters and
where each value came from). Everything an attempt later decides (retry or not, how
long to wait) reads that record, not the code, so ``.using(...)`` overrides and
executions enqueued before a deploy keep their policy. The names follow django-ox and
Django's open proposal for task retries (new-features #142): ``max_attempts``, and a
``backoff`` callable ``(exception, task_result) -> delay | None``.
"""

from __future__ import annotations

import enum
import inspect
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.tasks.exceptions import InvalidTask
from django.utils.module_loading import import_string

# Backoff and BackoffSpec are public here too: ``from django_tasks_fs.policy import Backoff``.
from .backoff import MAX_DELAY, as_backoff, as_delay, callable_path
from .backoff import Backoff as Backoff
from .backoff import BackoffSpec as BackoffSpec

#: The policy fields a task may declare (``@task(...)`` and ``.using(...)``).
POLICY_FIELDS = ("max_attempts", "backoff", "retry_on", "dont_retry_on", "timeout", "run_once")
#: The largest attempt budget a task may declare (beyond this, say None: unlimited).
MAX_ATTEMPTS_LIMIT = 10_000


class Source(enum.StrEnum):
    """Where an effective policy value came from (shown in the admin)."""

    TASK = "task"  #: ``@task(...)`` or ``.using(...)``
    OPTIONS = "options"  #: the backend's OPTIONS
    PLATFORM = "platform"  #: the Cloud Tasks queue's retry config / the Cloud Run job
    DEFAULT = "default"  #: nothing set it: the library's default


# -- validation -----------------------------------------------------------------------------


def _exception_classes(value: Any, name: str) -> str | None:
    if not isinstance(value, tuple) or not all(
        isinstance(c, type) and issubclass(c, BaseException) for c in value
    ):
        return (
            f"{name} must be a tuple of exception classes, such as (ConnectionError,), "
            f"not {value!r}."
        )
    return None


def policy_problems(values: Mapping[str, Any]) -> list[str]:
    """Every invalid policy value in ``values`` (a task's fields), one sentence each."""
    problems: list[str] = []
    attempts = values.get("max_attempts")
    if attempts is not None and (
        isinstance(attempts, bool)
        or not isinstance(attempts, int)
        or not 1 <= attempts <= MAX_ATTEMPTS_LIMIT
    ):
        problems.append(
            f"max_attempts must be a whole number from 1 to {MAX_ATTEMPTS_LIMIT}, or None "
            f"to inherit the backend's, not {attempts!r}."
        )
    backoff = values.get("backoff")
    if backoff is not None:
        try:
            constant = as_backoff(backoff)
        except (ValueError, OverflowError):  # negative, NaN, infinite
            problems.append(f"backoff must be between 0 and {MAX_DELAY}, not {backoff!r}.")
        else:
            if constant is None and not callable(backoff):
                problems.append(
                    "backoff must be a timedelta, a number of seconds, a Backoff(...), or a "
                    f"callable (exception, task_result) -> delay or None, not {backoff!r}."
                )
            elif constant is None and inspect.iscoroutinefunction(backoff):
                problems.append(f"backoff must be a synchronous callable, not {backoff!r}.")
            elif constant is not None and constant.base > MAX_DELAY:
                problems.append(f"backoff must be between 0 and {MAX_DELAY}, not {backoff!r}.")
    for name in ("retry_on", "dont_retry_on"):
        value = values.get(name)
        if value is not None and (problem := _exception_classes(value, name)):
            problems.append(problem)
    run_once = values.get("run_once")
    if run_once is not None and not isinstance(run_once, bool):
        problems.append(f"run_once must be True, False or None, not {run_once!r}.")
    return problems


_UNBOUND = object()


def declared_backoff(task: Any) -> Any:
    """The backoff of the ``@task`` at ``task``'s module path; _UNBOUND while the
    decorator runs (the name is not bound yet) or when there is no task there."""
    func = getattr(task, "func", None)
    found: Any = sys.modules.get(getattr(func, "__module__", "") or "")
    for part in (getattr(func, "__qualname__", "") or "").split("."):
        found = getattr(found, part, None)
    if found is None or getattr(found, "func", None) is not func:
        return _UNBOUND
    return getattr(found, "backoff", None)


def validate_policy(task: Any) -> None:
    """Raise InvalidTask naming every invalid policy value of ``task``.

    A backoff callable must be importable by its dotted path (a module-level function),
    unless it is the one the task was declared with: an execution records the path, and
    the attempt, maybe in another process, imports it from there.
    """
    values = {name: getattr(task, name, None) for name in POLICY_FIELDS}
    problems = policy_problems(values)
    spec = values["backoff"]
    if (
        not problems
        and spec is not None
        and as_backoff(spec) is None
        and callable_path(spec) is None
    ):
        declared = declared_backoff(task)
        if declared is not _UNBOUND and declared is not spec:
            problems.append(
                f"backoff {spec!r} cannot be imported by its dotted path: give using() "
                "a module-level function (a lambda or a closure only works in @task)."
            )
    if problems:
        raise InvalidTask(" ".join(problems))


# -- resolution -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Defaults:
    """What a backend offers when the task says nothing (each with its Source)."""

    max_attempts: tuple[int | None, Source]
    run_once: tuple[bool, Source]
    #: The backend's backoff; None with PLATFORM: the platform retries on its own schedule.
    backoff: tuple[Backoff | None, Source]
    #: Can the backend send a retry due later (Cloud Tasks)? If not (Cloud Run Jobs), a
    #: task's attempts beyond the platform's do not bring a backoff of their own.
    schedules_retries: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolved:
    """The policy a new execution records."""

    max_attempts: int | None
    run_once: bool
    timeout_seconds: float | None
    retry_policy: dict[str, Any]


def _class_paths(classes: tuple[type[BaseException], ...]) -> list[str]:
    return [f"{c.__module__}.{c.__qualname__}" for c in classes]


def resolve(task: Any, defaults: Defaults) -> Resolved:
    """The effective policy of a new execution of ``task``: task > OPTIONS > platform.

    The one place precedence is decided. When the platform's retries would not honour
    the policy (the task or the OPTIONS set the attempts or the backoff), the backoff
    is ours (Source other than PLATFORM) and the backend schedules each retry itself.
    """
    sources: dict[str, str] = {}
    attempts: int | None = getattr(task, "max_attempts", None)
    if attempts is not None:
        sources["max_attempts"] = Source.TASK
    else:
        attempts, sources["max_attempts"] = defaults.max_attempts
    run_once: bool | None = getattr(task, "run_once", None)
    if run_once is not None:
        sources["run_once"] = Source.TASK
    else:
        run_once, sources["run_once"] = defaults.run_once
    timeout: timedelta | None = getattr(task, "timeout", None)
    sources["timeout"] = Source.TASK if timeout is not None else Source.DEFAULT

    spec = getattr(task, "backoff", None)
    backoff: dict[str, Any] | None
    if spec is not None:
        sources["backoff"] = Source.TASK
        constant = as_backoff(spec)
        backoff = (
            constant.to_document()
            if constant is not None
            else {"kind": "callable", "path": callable_path(spec)}
        )
    else:
        fallback, source = defaults.backoff
        if (
            fallback is None
            and sources["max_attempts"] != Source.PLATFORM
            and defaults.schedules_retries
        ):
            # The platform's retries stop at its own limit: ours must schedule them.
            fallback, source = Backoff(maximum=timedelta(minutes=5)), Source.DEFAULT
        sources["backoff"] = source
        backoff = fallback.to_document() if fallback is not None else {"kind": "platform"}

    policy: dict[str, Any] = {"backoff": backoff, "sources": sources}
    retry_on = getattr(task, "retry_on", None)
    if retry_on is not None:
        policy["retry_on"] = _class_paths(retry_on)
    dont = getattr(task, "dont_retry_on", None) or ()
    if dont:
        policy["dont_retry_on"] = _class_paths(dont)
    return Resolved(
        max_attempts=attempts,
        run_once=bool(run_once),
        timeout_seconds=timeout.total_seconds() if timeout is not None else None,
        retry_policy=policy,
    )


# -- at a failed attempt ------------------------------------------------------------------


def _matches(exc_type: type[BaseException], paths: list[str]) -> bool:
    mro = {f"{c.__module__}.{c.__qualname__}" for c in exc_type.__mro__}
    return not mro.isdisjoint(paths)


def retries_on(policy: Mapping[str, Any], exc_type: type[BaseException]) -> bool:
    """Does the recorded policy retry after ``exc_type``? (``dont_retry_on`` wins;
    without ``retry_on`` every exception is retried. PermanentTaskError never reaches
    here: it always fails at once.)"""
    if _matches(exc_type, list(policy.get("dont_retry_on", []))):
        return False
    retry_on = policy.get("retry_on")
    return retry_on is None or _matches(exc_type, list(retry_on))


def schedules_retries(policy: Mapping[str, Any]) -> bool:
    """Is the wait before a retry ours (not the platform's retry configuration)?"""
    backoff = policy.get("backoff")
    return isinstance(backoff, Mapping) and backoff.get("kind") != "platform"


def recorded_delay(
    policy: Mapping[str, Any],
    attempt: int,
    *,
    exc: BaseException,
    task_result: Callable[[], Any],
    own: Any = None,
) -> timedelta | None:
    """The wait after failed attempt ``attempt`` under the recorded ``policy``; None:
    no further attempt (a backoff callable said so).

    A callable backoff is imported from its recorded path, or is ``own`` (the task's
    declared one, when it has no importable path), and is called with ``exc`` and
    ``task_result()``; whatever it raises propagates. The platform's backoff is a zero
    wait here: the platform delays its own retry.
    """
    backoff = policy.get("backoff")
    if not isinstance(backoff, Mapping) or backoff.get("kind") == "platform":
        return timedelta(0)
    if backoff.get("kind") == "callable":
        path = backoff.get("path")
        func = import_string(path) if path else own
        if not callable(func):
            raise ValueError(f"the task's backoff function is gone (recorded {path!r})")
        return as_delay(func(exc, task_result()))
    return Backoff.from_document(backoff).delay(attempt)


def describe(policy: Mapping[str, Any]) -> str:
    """The recorded backoff in words (the admin)."""
    backoff = policy.get("backoff")
    if not isinstance(backoff, Mapping):
        return "the backend's (recorded before per-task policies)"
    kind = backoff.get("kind")
    if kind == "platform":
        return "the platform's retry configuration"
    if kind == "callable":
        function = backoff.get("path") or "the task's own function"
        return f"{function}(exception, task_result)"
    spec = Backoff.from_document(backoff)
    if spec.factor == 1:
        text = f"{spec.base} between attempts"
    else:
        text = f"{spec.base} x {spec.factor:g}^(n-1)"
        if spec.maximum is not None:
            text += f", at most {spec.maximum}"
    if spec.jitter:
        text += f", up to {spec.jitter:.0%} less at random"
    return text


def effective_rows(
    *,
    max_attempts: int | None,
    run_once: bool,
    timeout_seconds: float | None,
    policy: Mapping[str, Any],
) -> list[tuple[str, str]]:
    """The effective policy of an execution, each value with where it came from (the admin)."""
    sources = policy.get("sources", {})

    def source(name: str) -> str:
        found = sources.get(name)
        return f" ({found})" if found else ""

    retry_on = policy.get("retry_on")
    dont = ["django_tasks_fs.exceptions.PermanentTaskError", *policy.get("dont_retry_on", [])]
    return [
        ("Max attempts", f"{max_attempts or 'unlimited'}{source('max_attempts')}"),
        ("Run once", f"{run_once}{source('run_once')}"),
        ("Timeout", f"{timeout_seconds:g} s" if timeout_seconds else "none"),
        ("Backoff", f"{describe(policy)}{source('backoff')}"),
        ("Retry on", "any exception" if retry_on is None else ", ".join(retry_on)),
        ("Never retry on", ", ".join(dont)),
    ]
