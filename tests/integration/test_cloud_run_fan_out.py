"""Cloud Run Jobs fan-out without the emulator: how enqueue_many() is split into job
executions, what each RunJob carries, how a task finds its member, and the option.
The platform is a recording fake here (tests/e2e/test_cloud_run_fan_out.py drives the
real API on the emulator)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.tasks import TaskResultStatus, task_backends

from django_tasks_fs import cancel_task, enqueue_many
from django_tasks_fs.backends import CloudRunJobsBackend
from django_tasks_fs.backends.fan_out import FanOutError, member_of, plan
from django_tasks_fs.exceptions import GoogleCloudError, MissingCloudResource
from django_tasks_fs.gcp import cloud_run, limits
from django_tasks_fs.gcp.resources import CloudResource, Kind
from django_tasks_fs.store import DispatchState, TaskExecution
from django_tasks_fs.store.ops.counting import disable_counting, enable_counting
from tests import tasks
from tests.settings import tasks_setting

GOOD = {
    "project_id": "p",
    "location": "europe-west1",
    "base_url": "https://app.example.com/tasks",
    "oidc_service_account": "invoker@p.iam.gserviceaccount.com",
}
FAN_OUT = cloud_run.FAN_OUT_ENV


def execution(n: int, **fields: Any) -> TaskExecution:
    values: dict[str, Any] = {
        "id": f"{n:032x}",
        "task_path": "tests.tasks.noop",
        "backend": "cloudjobs",
        "queue_name": "q",
        "priority": 0,
        "takes_context": False,
        "args": [],
        "kwargs": {},
        "status": TaskResultStatus.READY,
        "enqueued_at": datetime(2026, 1, 1, tzinfo=UTC),
        "run_after": datetime(2026, 1, 1, tzinfo=UTC),
        "max_attempts": 2,
        "run_once": False,
        "timeout_seconds": None,
        "dispatch_state": DispatchState.PENDING,
    }
    return TaskExecution(**{**values, **fields})


def ids(runs: list[list[TaskExecution]]) -> list[list[int]]:
    return [[int(e.id, 16) for e in run] for run in runs]


# -- plan(): which executions share a job execution -----------------------------------


def test_plan_splits_at_max_tasks_in_order() -> None:
    executions = [execution(n) for n in range(7)]
    assert ids(plan(executions, max_tasks=3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert ids(plan(executions, max_tasks=1)) == [[n] for n in range(7)]
    assert ids(plan(executions, max_tasks=1000)) == [list(range(7))]


def test_plan_splits_where_the_ids_would_outgrow_one_environment_variable() -> None:
    # 32-character ids and commas: 993 fit in 32,768 bytes, the 994th does not.
    executions = [execution(n) for n in range(2000)]
    runs = plan(executions, max_tasks=10_000)
    assert [len(run) for run in runs] == [993, 993, 14]
    for run in runs:
        assert len(",".join(e.id for e in run).encode()) <= limits.ENV_VALUE_MAX_BYTES
    assert [e.id for run in runs for e in run] == [e.id for e in executions]


def test_plan_groups_only_what_one_run_job_can_carry() -> None:
    traced = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    executions = [
        execution(0),
        execution(1, queue_name="other"),
        execution(2, timeout_seconds=30.0),
        execution(3),
        execution(4, trace_context=traced),
        execution(5, redispatches=1),  # its dispatch id is not its id: sent alone
        execution(6, queue_name="other"),
    ]
    assert ids(plan(executions, max_tasks=100)) == [[0, 3], [1, 6], [2], [4], [5]]


# -- member_of(): the container's side ----------------------------------------------


def test_each_task_runs_the_member_at_its_index() -> None:
    env = {FAN_OUT: "a,b,c", "CLOUD_RUN_TASK_COUNT": "3"}
    assert [member_of({**env, "CLOUD_RUN_TASK_INDEX": str(i)}) for i in range(3)] == [
        "a",
        "b",
        "c",
    ]


@pytest.mark.parametrize(
    "env",
    [
        {},
        {FAN_OUT: "a,b", "CLOUD_RUN_TASK_INDEX": "2", "CLOUD_RUN_TASK_COUNT": "2"},
        {FAN_OUT: "a,b", "CLOUD_RUN_TASK_INDEX": "0", "CLOUD_RUN_TASK_COUNT": "3"},
        {FAN_OUT: "a,b", "CLOUD_RUN_TASK_INDEX": "-1", "CLOUD_RUN_TASK_COUNT": "2"},
    ],
)
def test_a_task_outside_the_member_list_is_refused(env: dict[str, str]) -> None:
    with pytest.raises(FanOutError):
        member_of(env)


# -- the option ---------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 10_001, 2.5, "10", True])
def test_fan_out_max_tasks_is_checked(value: Any) -> None:
    messages = CloudRunJobsBackend("b", {"OPTIONS": {**GOOD, "fan_out_max_tasks": value}}).check()
    assert [m.id for m in messages] == ["django_tasks_fs.E002"]
    assert "from 1 to 10,000" in messages[0].msg


@pytest.mark.parametrize("value", [1, 10_000])
def test_fan_out_max_tasks_accepts_cloud_runs_range(value: int) -> None:
    backend = CloudRunJobsBackend("b", {"OPTIONS": {**GOOD, "fan_out_max_tasks": value}})
    assert backend.check() == []
    assert backend.config.fan_out_max_tasks == value


# -- dispatch_many() on a fake platform -----------------------------------------------


@pytest.fixture
def jobs(test_store: tuple[str, str], settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The Cloud Run Jobs backend; ``runs`` lists the keyword arguments of each RunJob;
    ``failing`` set to an exception makes the next ones raise it."""
    return request_jobs(test_store, settings, monkeypatch)


def request_jobs(
    test_store: tuple[str, str], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """See the ``jobs`` fixture."""
    project, store = test_store
    settings.TASKS = tasks_setting(project, store=store)
    backend: Any = task_backends["cloudjobs"]
    backend.runs = []
    backend.failing = None

    def run_job(target: Any, **kw: Any) -> str:
        backend.runs.append(kw)
        if backend.failing is not None:
            raise backend.failing
        return f"projects/p/locations/l/jobs/{kw['job']}/executions/e{len(backend.runs)}"

    monkeypatch.setattr(cloud_run, "run_job", run_job)
    monkeypatch.setattr(cloud_run, "job_max_attempts", lambda target, job: 2)
    return backend


def record_calls(n: int) -> list[Any]:
    return [((f"/nowhere/{i}", f"t{i}"), {}) for i in range(n)]


def test_enqueue_many_starts_one_job_execution_and_writes_nothing_after(jobs: Any) -> None:
    record = tasks.record.using(backend="cloudjobs", queue_name="e2e-job")
    results = enqueue_many(record, record_calls(5))
    (run,) = jobs.runs
    assert run["task_count"] == 5
    assert run["job"] == "e2e-job"
    assert run["args"] == [*jobs.config.command, "--fan-out"]
    assert run["env"][FAN_OUT] == ",".join(r.id for r in results)
    assert cloud_run.DISPATCH_ENV not in run["env"]
    for result in results:  # the members' claims record DISPATCHED, as for one send
        stored = jobs.executions.get(result.id)
        assert (stored.dispatch_state, stored.dispatch_error) == (DispatchState.PENDING, None)


def test_fan_out_max_tasks_splits_the_job_executions(jobs: Any, settings: Any) -> None:
    settings.TASKS["cloudjobs"]["OPTIONS"]["fan_out_max_tasks"] = 2
    del task_backends["cloudjobs"]  # rebuilt with the new option
    assert task_backends["cloudjobs"].config.fan_out_max_tasks == 2  # type: ignore[attr-defined]
    record = tasks.record.using(backend="cloudjobs", queue_name="e2e-job")
    enqueue_many(record, record_calls(5))
    fan_outs = [run for run in jobs.runs if run["args"][-1] == "--fan-out"]
    assert [run["task_count"] for run in fan_outs] == [2, 2]
    (alone,) = [run for run in jobs.runs if run not in fan_outs]  # sent as enqueue() does
    assert "task_count" not in alone


def test_a_failed_fan_out_leaves_every_member_pending_with_the_error(jobs: Any) -> None:
    jobs.failing = GoogleCloudError("UNAVAILABLE")
    record = tasks.record.using(backend="cloudjobs", queue_name="e2e-job")
    results = enqueue_many(record, record_calls(3))
    assert len(jobs.runs) == 1
    for result in results:
        stored = jobs.executions.get(result.id)
        assert stored.dispatch_state == DispatchState.PENDING
        assert stored.dispatch_error == "GoogleCloudError: UNAVAILABLE"


def test_a_fan_out_to_a_missing_job_closes_every_member(jobs: Any) -> None:
    resource = CloudResource(kind=Kind.JOB, project="p", location="l", name="e2e-job")
    jobs.failing = resource.missing()
    record = tasks.record.using(backend="cloudjobs", queue_name="e2e-job")
    with pytest.raises(MissingCloudResource) as raised:
        enqueue_many(record, record_calls(3))
    assert raised.value.execution_id is not None
    assert len(jobs.runs) == 1
    closed = [jobs.executions.get(i) for i in jobs.runs[0]["env"][FAN_OUT].split(",")]
    assert [e.status for e in closed] == [TaskResultStatus.FAILED] * 3


def test_a_resend_lists_a_fan_outs_job_executions_once(
    jobs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweeper resends each member left PENDING: the first resend's look-up finds
    them all (``seen``), the others ask Cloud Run nothing."""
    record = tasks.record.using(backend="cloudjobs", queue_name="e2e-job")
    results = enqueue_many(record, record_calls(4))
    env = jobs.runs[0]["env"][FAN_OUT]
    lookups: list[str] = []

    def find_execution(target: Any, *, job: str, dispatch_id: str, seen: Any = None) -> Any:
        lookups.append(dispatch_id)
        seen.update(dict.fromkeys(env.split(","), "executions/e1"))
        return seen.get(dispatch_id)

    monkeypatch.setattr(cloud_run, "find_execution", find_execution)
    sent = [jobs.send(jobs.executions.get(r.id), resend=True) for r in results]
    assert sent == [{"cloud_run_execution": "executions/e1"}] * 4
    assert lookups == [results[0].id]
    assert len(jobs.runs) == 1  # nothing started again


def test_a_forceful_cancel_stops_a_fan_out_member_alone(
    jobs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cancelled: list[str] = []
    counts = {"executions/fan": 3, "executions/one": 1}
    monkeypatch.setattr(
        cloud_run,
        "execution_info",
        lambda target, name: cloud_run.RunInfo(task_count=counts[name], finished=False),
    )
    monkeypatch.setattr(
        cloud_run, "cancel_execution", lambda target, name: cancelled.append(name) or True
    )
    record = tasks.record.using(backend="cloudjobs", queue_name="e2e-job")
    for name in counts:
        (result,) = enqueue_many(record, record_calls(1))
        jobs.executions.claim(
            result.id,
            worker_id="w",
            lease_duration=jobs.config.lease_duration,
            platform_names={"cloud_run_execution": name},
        )
        cancel_task(result, force=True)
    assert cancelled == ["executions/one"]  # the fan-out's member: its heartbeat stops it


@pytest.mark.parametrize(
    ("task_count", "finished", "started_again"),
    [(3, False, False), (3, True, True), (1, False, True)],
)
def test_a_member_still_waiting_in_a_running_fan_out_is_not_abandoned(
    jobs: Any, monkeypatch: pytest.MonkeyPatch, task_count: int, finished: bool, started_again: bool
) -> None:
    """READY and dispatched longer than the sweeper's stale period: a member waiting for
    a free task (low parallelism) keeps its job execution while that one runs."""
    info = cloud_run.RunInfo(task_count=task_count, finished=finished)
    monkeypatch.setattr(cloud_run, "execution_info", lambda target, name: info)
    record = tasks.record.using(backend="cloudjobs", queue_name="e2e-job")
    (result, _) = enqueue_many(record, record_calls(2))
    jobs.executions.set_dispatch(
        result.id, DispatchState.DISPATCHED, cloud_run_execution="executions/fan"
    )
    marked = jobs.executions.mark_for_redispatch(result.id, grace=timedelta(0), stale=timedelta(0))
    assert marked is not None
    after = jobs.dispatch(marked, confirm=True)
    assert len(jobs.runs) == (2 if started_again else 1)
    assert after.dispatch_state == DispatchState.DISPATCHED
    if not started_again:
        assert after.cloud_run_execution == "executions/fan"


# -- execute_task --fan-out ------------------------------------------------------------


def run_member(monkeypatch: pytest.MonkeyPatch, members: list[str], index: int) -> int:
    monkeypatch.setenv(FAN_OUT, ",".join(members))
    monkeypatch.setenv("CLOUD_RUN_TASK_INDEX", str(index))
    monkeypatch.setenv("CLOUD_RUN_TASK_COUNT", str(len(members)))
    with pytest.raises(SystemExit) as exited:
        call_command("execute_task", "--fan-out", "--backend", "cloudjobs", stdout=StringIO())
    return int(exited.value.code or 0)


def test_execute_task_fan_out_runs_the_member_at_its_index(
    jobs: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    log = tmp_path / "ran.txt"
    record = tasks.record.using(backend="cloudjobs", queue_name="e2e-job")
    results = enqueue_many(record, [((str(log), f"t{i}"), {}) for i in range(3)])
    members = [r.id for r in results]
    assert run_member(monkeypatch, members, 1) == 0
    assert log.read_text().splitlines() == ["t1"]
    assert [jobs.executions.get(i).status for i in members] == [
        TaskResultStatus.READY,
        TaskResultStatus.SUCCESSFUL,
        TaskResultStatus.READY,
    ]
    # Task 1 again (Cloud Run retrying it, a duplicate): skipped, exit 0, no second run.
    assert run_member(monkeypatch, members, 1) == 0
    # A member cancelled before its task started is skipped too.
    cancel_task(results[2])
    assert run_member(monkeypatch, members, 2) == 0
    assert log.read_text().splitlines() == ["t1"]
    assert jobs.executions.get(members[2]).status == TaskResultStatus.FAILED


def test_execute_task_fan_out_keeps_the_retry_exit_status(
    jobs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    flaky = tasks.flaky.using(backend="cloudjobs", queue_name="e2e-job")
    results = enqueue_many(flaky, [((0,), {}), ((1,), {})])
    assert run_member(monkeypatch, [r.id for r in results], 1) == 75  # Cloud Run retries it


def test_a_fan_out_costs_firestore_what_its_members_cost_alone(
    test_store: tuple[str, str], settings: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """No document for the fan-out, no write after the RunJob: one create per member,
    then each task's claim (one read, one write) and result (one write)."""
    counted = enable_counting()  # before the stores are built (the jobs fixture's)
    counted.reset()
    try:
        jobs = request_jobs(test_store, settings, monkeypatch)
        record = tasks.record.using(backend="cloudjobs", queue_name="e2e-job")
        results = enqueue_many(record, [((str(tmp_path / "ran"), f"t{i}"), {}) for i in range(5)])
        assert len(jobs.runs) == 1
        enqueued = counted.as_dict()
        assert (enqueued["writes"], enqueued["commits"]) == (5, 1)
        counted.reset()
        for index in range(5):
            assert run_member(monkeypatch, [r.id for r in results], index) == 0
        ran = counted.as_dict()
        assert (ran["writes"], ran["reads"], ran["queries"]) == (10, 5, 0)
    finally:
        disable_counting()
        counted.reset()


@pytest.mark.parametrize(
    "argv",
    [["execute_task"], ["execute_task", "some-id", "--fan-out"]],
)
def test_execute_task_wants_an_id_or_fan_out(jobs: Any, argv: list[str]) -> None:
    with pytest.raises(CommandError, match="an execution id or --fan-out"):
        call_command(*argv, stdout=StringIO())


def test_execute_task_fan_out_outside_a_fan_out_is_an_error(
    jobs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(FAN_OUT, raising=False)
    with pytest.raises(CommandError, match=FAN_OUT):
        call_command("execute_task", "--fan-out", stdout=StringIO())
