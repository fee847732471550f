"""Per-task policy without I/O: validation, Backoff, precedence, exception filters."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.tasks import task
from django.tasks.exceptions import InvalidTask

from django_tasks_fs.policy import (
    Backoff,
    Defaults,
    Source,
    as_delay,
    describe,
    effective_rows,
    recorded_delay,
    resolve,
    retries_on,
    schedules_retries,
)
from django_tasks_fs.tasks import Task
from tests import tasks

LOCAL = Defaults(
    max_attempts=(3, Source.OPTIONS),
    run_once=(False, Source.DEFAULT),
    backoff=(Backoff(base=timedelta(seconds=1), maximum=timedelta(seconds=300)), Source.DEFAULT),
)
CLOUD = Defaults(
    max_attempts=(4, Source.PLATFORM),
    run_once=(False, Source.DEFAULT),
    backoff=(None, Source.PLATFORM),
)


def plain() -> None:
    return None


# -- declaring -------------------------------------------------------------------------------


def test_the_decorator_passes_the_policy_to_our_task_class() -> None:
    declared = tasks.fails_with
    assert isinstance(declared, Task)
    assert declared.max_attempts == 5
    assert declared.backoff == timedelta(seconds=30)
    assert declared.retry_on == (ConnectionError,)
    assert declared.dont_retry_on == (ConnectionRefusedError,)
    assert declared.run_once is None  # inherit


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"max_attempts": 0}, "max_attempts must be a whole number from 1 to 10000"),
        ({"max_attempts": True}, "not True"),
        ({"max_attempts": "3"}, "not '3'"),
        ({"backoff": "soon"}, "backoff must be a timedelta, a number of seconds"),
        ({"backoff": timedelta(seconds=-1)}, "backoff must be between 0 and 30 days"),
        ({"backoff": float("inf")}, "backoff must be between 0 and 30 days"),
        ({"backoff": float("nan")}, "backoff must be between 0 and 30 days"),
        ({"backoff": timedelta(days=31)}, "backoff must be between 0 and 30 days"),
        ({"retry_on": ValueError}, "retry_on must be a tuple of exception classes"),
        ({"retry_on": (ValueError, "KeyError")}, "retry_on must be a tuple"),
        ({"dont_retry_on": [KeyError]}, "dont_retry_on must be a tuple"),
        ({"run_once": 1}, "run_once must be True, False or None, not 1"),
        ({"timeout": timedelta(hours=2)}, "Task timeout must be a timedelta between"),
    ],
)
def test_bad_values_fail_at_declaration(policy: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidTask, match=message.replace("(", r"\(")):
        task(**policy)(plain)


def test_an_async_backoff_is_refused() -> None:
    async def later(exception: BaseException, task_result: Any) -> int:
        return 1

    with pytest.raises(InvalidTask, match="backoff must be a synchronous callable"):
        task(backoff=later)(plain)


def test_using_takes_the_policy_and_validates_it() -> None:
    changed = tasks.fails_with.using(max_attempts=2, run_once=True, queue_name="default")
    assert (changed.max_attempts, changed.run_once) == (2, True)
    assert changed.backoff == timedelta(seconds=30)  # kept
    # Django's own keywords still work alone (results.to_task_result relies on it).
    assert tasks.fails_with.using(priority=3).priority == 3
    with pytest.raises(InvalidTask, match="max_attempts must be"):
        tasks.fails_with.using(max_attempts=-1)
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['retries'\]"):
        tasks.fails_with.using(retries=3)


def test_using_refuses_a_backoff_that_cannot_be_imported_back() -> None:
    # Its path is recorded and imported by the attempt, maybe in another process.
    with pytest.raises(InvalidTask, match="cannot be imported by its dotted path"):
        tasks.noop.using(backoff=lambda exception, task_result: 1)
    assert tasks.noop.using(backoff=tasks.stop_after_two).backoff is tasks.stop_after_two
    # The lambda a task was declared with is its own: using() may keep it.
    assert tasks.lambda_backoff.using(priority=1).backoff is tasks.lambda_backoff.backoff


# -- Backoff -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("attempt", "seconds"), [(1, 2), (2, 6), (3, 18), (4, 20), (40, 20)])
def test_backoff_grows_by_its_factor_up_to_its_maximum(attempt: int, seconds: float) -> None:
    spec = Backoff(base=timedelta(seconds=2), factor=3, maximum=timedelta(seconds=20))
    assert spec.delay(attempt) == timedelta(seconds=seconds)


def test_jitter_only_shortens_a_delay_and_by_at_most_its_fraction() -> None:
    spec = Backoff(base=timedelta(seconds=10), factor=1, jitter=0.5)
    delays = {spec.delay(1) for _ in range(200)}
    assert all(timedelta(seconds=5) <= d <= timedelta(seconds=10) for d in delays)
    assert len(delays) > 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"factor": 0.5}, "factor must be a number from 1 to 1000"),
        ({"jitter": 2}, "jitter must be a number from 0 to 1"),
        ({"base": 5}, "base must be a timedelta >= 0"),
        ({"maximum": timedelta(seconds=-1)}, "maximum must be a timedelta >= 0 or None"),
    ],
)
def test_a_bad_backoff_spec_is_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Backoff(**fields)


def test_a_backoff_round_trips_through_its_document() -> None:
    spec = Backoff(base=timedelta(seconds=1.5), factor=2.5, maximum=None, jitter=0.25)
    assert Backoff.from_document(spec.to_document()) == spec


@pytest.mark.parametrize(
    ("value", "delay"),
    [
        (None, None),
        (3, timedelta(seconds=3)),
        (0.5, timedelta(seconds=0.5)),
        (timedelta(minutes=1), timedelta(minutes=1)),
        (-4, timedelta(0)),
        (timedelta(days=90), timedelta(days=30)),
    ],
)
def test_a_callable_answer_is_a_delay_or_no_retry(value: Any, delay: timedelta | None) -> None:
    assert as_delay(value) == delay


def test_a_callable_answer_of_another_type_is_an_error() -> None:
    with pytest.raises(ValueError, match="a backoff must return a timedelta, seconds or None"):
        as_delay("5")


# -- precedence: task > OPTIONS > platform ------------------------------------------------------


def test_a_task_without_a_policy_takes_the_backend_defaults() -> None:
    resolved = resolve(tasks.noop, LOCAL)
    assert (resolved.max_attempts, resolved.run_once, resolved.timeout_seconds) == (3, False, None)
    assert resolved.retry_policy["sources"] == {
        "max_attempts": "options",
        "run_once": "default",
        "timeout": "default",
        "backoff": "default",
    }
    assert resolved.retry_policy["backoff"] == LOCAL.backoff[0].to_document()  # type: ignore[union-attr]
    assert "retry_on" not in resolved.retry_policy


def test_the_task_wins_over_options_and_platform() -> None:
    declared = tasks.fails_with.using(run_once=True, timeout=timedelta(seconds=20))
    for defaults in (LOCAL, CLOUD):
        resolved = resolve(declared, defaults)
        assert (resolved.max_attempts, resolved.run_once, resolved.timeout_seconds) == (5, True, 20)
        assert set(resolved.retry_policy["sources"].values()) == {"task"}
        assert resolved.retry_policy["backoff"] == {
            "kind": "exponential",
            "base": 30.0,
            "factor": 1.0,
            "maximum": None,
            "jitter": 0.0,
        }
        assert resolved.retry_policy["retry_on"] == ["builtins.ConnectionError"]
        assert resolved.retry_policy["dont_retry_on"] == ["builtins.ConnectionRefusedError"]


def test_on_google_cloud_the_platform_decides_what_nobody_set() -> None:
    resolved = resolve(tasks.noop, CLOUD)
    assert resolved.max_attempts == 4
    assert resolved.retry_policy["backoff"] == {"kind": "platform"}
    assert resolved.retry_policy["sources"]["max_attempts"] == "platform"
    assert not schedules_retries(resolved.retry_policy)  # the queue's backoff, as before


def test_a_task_budget_beyond_the_platform_brings_our_backoff() -> None:
    # The queue stops at its own max_attempts: the retries must be scheduled by us.
    resolved = resolve(tasks.noop.using(max_attempts=9), CLOUD)
    assert resolved.max_attempts == 9
    assert resolved.retry_policy["sources"]["backoff"] == "default"
    assert schedules_retries(resolved.retry_policy)
    # ... unless the backend cannot send a retry due later (Cloud Run Jobs).
    jobs = Defaults(
        max_attempts=CLOUD.max_attempts,
        run_once=CLOUD.run_once,
        backoff=CLOUD.backoff,
        schedules_retries=False,
    )
    assert not schedules_retries(resolve(tasks.noop.using(max_attempts=9), jobs).retry_policy)


def test_a_callable_backoff_is_recorded_by_its_path() -> None:
    resolved = resolve(tasks.decides_its_backoff, LOCAL)
    assert resolved.retry_policy["backoff"] == {
        "kind": "callable",
        "path": "tests.tasks.stop_after_two",
    }
    assert resolve(tasks.lambda_backoff, LOCAL).retry_policy["backoff"] == {
        "kind": "callable",
        "path": None,  # the task's own: the attempt takes it from the task
    }


# -- at a failed attempt --------------------------------------------------------------------


def test_retry_on_and_dont_retry_on_match_subclasses() -> None:
    policy = resolve(tasks.fails_with, LOCAL).retry_policy
    assert retries_on(policy, ConnectionError)
    assert retries_on(policy, ConnectionResetError)  # a subclass of ConnectionError
    assert not retries_on(policy, ConnectionRefusedError)  # dont_retry_on wins
    assert not retries_on(policy, ValueError)  # not in retry_on
    assert retries_on(resolve(tasks.noop, LOCAL).retry_policy, ValueError)  # no filter


def test_the_recorded_delay_follows_the_recorded_backoff() -> None:
    def delay(policy: dict[str, Any], attempt: int, own: Any = None) -> timedelta | None:
        return recorded_delay(
            policy, attempt, exc=ValueError("x"), task_result=lambda: "result", own=own
        )

    assert delay(resolve(tasks.fails_with, LOCAL).retry_policy, 3) == timedelta(seconds=30)
    assert delay(resolve(tasks.noop, LOCAL).retry_policy, 3) == timedelta(seconds=4)
    assert delay({"backoff": {"kind": "platform"}}, 3) == timedelta(0)
    seen: list[Any] = []

    def own(exception: BaseException, task_result: Any) -> int:
        seen.append((exception.args, task_result))
        return 5

    assert delay({"backoff": {"kind": "callable", "path": None}}, 1, own) == timedelta(seconds=5)
    assert seen == [(("x",), "result")]
    with pytest.raises(ValueError, match="backoff function is gone"):
        delay({"backoff": {"kind": "callable", "path": None}}, 1)


def test_the_effective_policy_names_each_source() -> None:
    resolved = resolve(tasks.fails_with.using(timeout=timedelta(seconds=20)), CLOUD)
    rows = dict(
        effective_rows(
            max_attempts=resolved.max_attempts,
            run_once=resolved.run_once,
            timeout_seconds=resolved.timeout_seconds,
            policy=resolved.retry_policy,
        )
    )
    assert rows == {
        "Max attempts": "5 (task)",
        "Run once": "False (default)",
        "Timeout": "20 s",
        "Backoff": "0:00:30 between attempts (task)",
        "Retry on": "builtins.ConnectionError",
        "Never retry on": "django_tasks_fs.exceptions.PermanentTaskError, "
        "builtins.ConnectionRefusedError",
    }
    assert describe({}) == "the backend's (recorded before per-task policies)"
    assert describe(resolve(tasks.noop, CLOUD).retry_policy) == "the platform's retry configuration"
