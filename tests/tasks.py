"""Sample tasks shared by the test suite."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.tasks import task

from django_tasks_fs import PermanentTaskError, is_task_cancelled
from django_tasks_fs.tasks import TaskContext


def _record(path: str, line: str) -> None:
    # O_APPEND: concurrent small writes from several processes never interleave.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


@task
def noop() -> None:
    return None


@task
def echo(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"args": list(args), "kwargs": kwargs}


@task
def failing(message: str = "boom") -> None:
    raise ValueError(message)


@task
def permanent() -> None:
    raise PermanentTaskError("do not retry me")


@task
def record(path: str, token: str) -> str:
    """Append ``token`` to ``path``: counts how many times a body ran."""
    _record(path, token)
    return token


@task
def record_and_sleep(path: str, token: str, seconds: float) -> str:
    _record(path, f"start {token}")
    time.sleep(seconds)
    _record(path, f"end {token}")
    return token


@task(takes_context=True)
def flaky(context: TaskContext, fail_times: int) -> int:
    """Fail the first ``fail_times`` attempts, then return the attempt number."""
    if context.attempt <= fail_times:
        raise ConnectionError(f"attempt {context.attempt} fails")
    return int(context.attempt)


@task(takes_context=True)
def wait_for_cancel(context: TaskContext, path: str, seconds: float = 30.0) -> str:
    """Run until cancelled (cooperatively), recording what it saw."""
    _record(path, "started")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if is_task_cancelled(context, refresh=True):
            _record(path, "noticed cancel")
            return "cancelled cooperatively"
        time.sleep(0.05)
    return "not cancelled"


@task(queue_name="default")
def sleep_then_record(path: str, seconds: float) -> str:
    """Sleep (interruptibly), then record; records 'interrupted' if stopped by a signal.

    "started" is recorded inside the ``try``: a signal that lands while it is being
    written (a process descheduled on a loaded machine) is still recorded as such.
    """
    try:
        _record(path, "started")
        time.sleep(seconds)
    except BaseException as exc:
        _record(path, f"interrupted {type(exc).__name__}")
        raise
    _record(path, "finished")
    return "slept"


@task(backend="jobs", timeout=timedelta(seconds=1))
def too_slow(path: str) -> None:
    _record(path, "started")
    time.sleep(60)


@task
def returns_set() -> Any:
    return {1, 2}


@task
async def async_add(a: int, b: int) -> int:
    await asyncio.sleep(0)
    return a + b


@task(takes_context=True)
def attempt_info(context: TaskContext) -> dict[str, Any]:
    return {"attempt": context.attempt, "id": context.task_result.id}


def write_marker(path: str) -> None:
    Path(path).write_text("x")


@task(takes_context=True)
def claim_myself(context: TaskContext) -> str:
    """Try to win the lease of the running attempt from inside it: must be refused."""
    from django.tasks import task_backends

    from django_tasks_fs.store.errors import ClaimRefused

    backend: Any = task_backends[context.task_result.backend]
    try:
        backend.executions.claim(
            context.task_result.id, worker_id="intruder", lease_duration=timedelta(seconds=5)
        )
    except ClaimRefused as refused:
        return str(refused.reason)
    return "claimed twice!"


@task(takes_context=True)
def die_on_first_attempt(context: TaskContext, path: str, token: str) -> str:
    """kill -9 its own process on attempt 1 (a crashed container), then succeed."""
    if context.attempt == 1:
        _record(path, f"died {token}")
        os.kill(os.getpid(), 9)
    _record(path, token)
    return token


@task(takes_context=True)
def die_holding_a_long_lease(context: TaskContext, path: str, token: str) -> str:
    """On attempt 1, push its lease an hour ahead and kill -9 its own process: a crashed
    container whose lease is certainly still live when the platform's retry arrives."""
    if context.attempt == 1:
        from django.tasks import task_backends

        store: Any = task_backends[context.task_result.backend].executions  # type: ignore[attr-defined]
        _record(path, f"died {token}")
        store.documents.update(
            store.collection_name,
            context.task_result.id,
            {"lease_expires_at": store.clock.now() + timedelta(hours=1)},
        )
        os.kill(os.getpid(), 9)
    _record(path, token)
    return token


def _span_start(path: str, token: str) -> int:
    """Log a body's start (CLOCK_MONOTONIC, wall clock, pid, process group); its pid."""
    pid = os.getpid()
    _record(path, f"start {token} {time.monotonic():.6f} {time.time():.6f} {pid} {os.getpgid(0)}")
    return pid


@task
def record_span(path: str, token: str, seconds: float) -> str:
    """Log when the body started and ended, and where (benchmarks/campaign/spans.py reads
    it back): CLOCK_MONOTONIC is system-wide on Linux and libfaketime leaves it alone;
    the wall clock shows the skew; an interrupted body logs ``stop``."""
    pid = _span_start(path, token)
    try:
        time.sleep(seconds)
    except BaseException:
        _record(path, f"stop {token} {time.monotonic():.6f} {pid}")
        raise
    _record(path, f"end {token} {time.monotonic():.6f} {pid}")
    return token


@task(takes_context=True)
def crash_at(context: TaskContext, path: str, token: str, seconds: float, point: str) -> str:
    """``record_span`` whose attempt 1 is killed (-9) at ``point``: ``mid-task`` (half-way
    through, logged as ``stop``) or ``after-return`` (the body's work done and logged,
    the result not yet written); any other point runs normally."""
    pid = _span_start(path, token)
    dies = context.attempt == 1 and point in ("mid-task", "after-return")
    mid_task = dies and point == "mid-task"
    time.sleep(seconds / 2 if mid_task else seconds)
    _record(path, f"{'stop' if mid_task else 'end'} {token} {time.monotonic():.6f} {pid}")
    if dies:
        os.kill(pid, 9)
    return token


# -- per-task policy (django_tasks_fs.policy) --------------------------------------------


def stop_after_two(exception: BaseException, task_result: Any) -> timedelta | None:
    """A backoff callable: 7 s after the first failure, then no further attempt."""
    # The result describes the attempt as failed, its error included.
    assert task_result.status == "FAILED"
    assert len(task_result.errors) == task_result.attempts
    return None if task_result.attempts >= 2 else timedelta(seconds=7)


_RAISES: dict[str, type[Exception]] = {
    "connection": ConnectionError,
    "refused": ConnectionRefusedError,
    "value": ValueError,
}


@task(
    max_attempts=5,
    backoff=timedelta(seconds=30),
    retry_on=(ConnectionError,),
    dont_retry_on=(ConnectionRefusedError,),
)
def fails_with(kind: str) -> None:
    raise _RAISES[kind](kind)


@task(max_attempts=10, backoff=stop_after_two)
def decides_its_backoff() -> None:
    raise ValueError("again")


@task(backoff=lambda exception, task_result: 3)
def lambda_backoff() -> None:
    raise ValueError("lambda")


@task
def timed_failure(path: str) -> None:
    """Record when each attempt started (time.time()), then fail."""
    _record(path, repr(time.time()))
    raise ValueError("timed")


@task
def record_task_env(path: str, token: str) -> str:
    """Record ``token`` and the Cloud Run task it ran as: "token index count execution"."""
    env = os.environ
    names = ("CLOUD_RUN_TASK_INDEX", "CLOUD_RUN_TASK_COUNT", "CLOUD_RUN_EXECUTION")
    _record(path, " ".join([token, *(env.get(name, "-") for name in names)]))
    return token


@task(takes_context=True)
def record_or_fail_once(context: TaskContext, path: str, token: str, fail: bool) -> str:
    """Record ``token``; with ``fail``, raise on attempt 1 first (recording "failed")."""
    if fail and context.attempt == 1:
        _record(path, f"failed {token}")
        raise ConnectionError(f"{token} fails once")
    _record(path, token)
    return token


@task(unique_key=lambda user_id, path=None, gate=None: f"sync:{user_id}")
def sync_user(user_id: int, path: str | None = None, gate: str | None = None) -> int:
    """A task with a unique key per user (tests of unique enqueue); waits up to 30 s for
    the file ``gate`` to exist, if given, before it records its run in ``path``."""
    deadline = time.monotonic() + 30
    while gate is not None and not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.05)
    if path is not None:
        _record(path, f"sync {user_id}")
    return user_id


@task(takes_context=True, unique_key=lambda path, key, seconds: key)
def unique_span(context: TaskContext, path: str, key: str, seconds: float) -> str:
    """``record_span`` with a unique key, its token ``key/execution id`` (the campaign's
    unique-keys scenario reads back that no two executions of a key ran at once)."""
    return str(record_span.call(path, f"{key}/{context.task_result.id}", seconds))


@task
def record_group(group_id: str, summary: dict[str, int], path: str, label: str) -> str:
    """A group callback: one line per run, naming the group and its summary."""
    line = f"{label} {group_id} {summary['size']} {summary['succeeded']} {summary['failed']}"
    _record(path, line)
    return line
