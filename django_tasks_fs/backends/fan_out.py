"""Cloud Run Jobs fan-out: many executions in one job execution, one per task.

``enqueue_many()`` on a CloudRunJobsBackend starts one job execution with
``task_count=N`` for N executions alike (same job, timeout and trace), not N job
executions. Their ids travel in one environment variable (``FAN_OUT_ENV``, comma
separated, in task order) and the container, ``execute_task --fan-out``, runs the one
at its ``CLOUD_RUN_TASK_INDEX`` with the usual attempt machinery. One variable holds
at most 32 KiB, about 990 ids: larger fan-outs are split into several job executions
(as is anything above ``fan_out_max_tasks``). No document is written for a fan-out:
the job execution's environment is the record, which a resend looks through.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..gcp.cloud_run import FAN_OUT_ENV
from ..gcp.limits import ENV_VALUE_MAX_BYTES, MAX_TASK_COUNT
from ..store import TaskExecution
from .google_cloud import dispatch_id

#: Environment variables Cloud Run sets in each task of a job execution.
TASK_INDEX_ENV = "CLOUD_RUN_TASK_INDEX"
TASK_COUNT_ENV = "CLOUD_RUN_TASK_COUNT"


class FanOutError(ValueError):
    """The environment does not name this task's member (not started as a fan-out)."""


def _key(execution: TaskExecution) -> tuple[object, ...]:
    """What the members of one job execution share: it is set once for all of them."""
    return (
        execution.queue_name,
        execution.timeout_seconds,
        tuple(sorted(execution.trace_context.items())),
    )


def plan(executions: Sequence[TaskExecution], *, max_tasks: int) -> list[list[TaskExecution]]:
    """Split ``executions`` into the job executions to start, in order of first member.

    Members of one share queue, timeout and trace context, are first dispatches (a
    resend looks for the id) and number at most ``max_tasks`` (and Cloud Run's 10,000),
    their ids joined fitting one environment variable. A list of one is sent alone.
    """
    limit = max(1, min(max_tasks, MAX_TASK_COUNT))
    open_runs: dict[tuple[object, ...], list[TaskExecution]] = {}
    sizes: dict[tuple[object, ...], int] = {}
    runs: list[list[TaskExecution]] = []
    for execution in executions:
        ident = dispatch_id(execution)
        if limit == 1 or execution.redispatches or "," in ident:
            runs.append([execution])
            continue
        key = _key(execution)
        run = open_runs.get(key)
        grown = sizes.get(key, -1) + 1 + len(ident.encode())
        if run is None or len(run) >= limit or grown > ENV_VALUE_MAX_BYTES:
            run = []
            runs.append(run)
            open_runs[key] = run
            grown = len(ident.encode())
        run.append(execution)
        sizes[key] = grown
    return runs


def member_env(member_ids: Sequence[str]) -> dict[str, str]:
    """The environment naming a job execution's members, in task order (their
    execution ids: for a first dispatch, also its dispatch id, which a resend seeks)."""
    return {FAN_OUT_ENV: ",".join(member_ids)}


def member_of(environ: Mapping[str, str]) -> str:
    """The execution id this task of a fan-out runs: the one at its CLOUD_RUN_TASK_INDEX.

    FanOutError when the environment has no member list, the index is not a whole
    number within it, or the task count disagrees (a job execution not started by
    ``enqueue_many()``, or with its ``task_count`` changed).
    """
    listed = environ.get(FAN_OUT_ENV, "")
    if not listed:
        raise FanOutError(f"--fan-out needs ${FAN_OUT_ENV} (set by enqueue_many()); it is unset.")
    members = listed.split(",")
    index, count = environ.get(TASK_INDEX_ENV, "0"), environ.get(TASK_COUNT_ENV, "1")
    if not (index.isdigit() and count.isdigit()):
        raise FanOutError(
            f"${TASK_INDEX_ENV} and ${TASK_COUNT_ENV} must be whole numbers, "
            f"not {index!r} and {count!r}."
        )
    if int(count) != len(members) or int(index) >= len(members):
        raise FanOutError(
            f"Task {index} of {count} does not match the {len(members)} members of "
            f"${FAN_OUT_ENV}: start fan-outs with enqueue_many() only."
        )
    return members[int(index)]  # a first dispatch's id is the execution id (see plan())
