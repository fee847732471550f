"""The execution state machine, without Firestore."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.tasks import TaskResultStatus

from django_tasks_fs.store import (
    DispatchState,
    ErrorEntry,
    StoreSettings,
    TaskExecution,
    transitions,
)
from django_tasks_fs.store.errors import ClaimReason, ClaimRefused, LeaseLost
from django_tasks_fs.store.history import append_error, append_worker

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)
SETTINGS = StoreSettings(max_history_entries=3, max_history_bytes=10_000)
ERROR = ErrorEntry(exception_class_path="builtins.ValueError", traceback="tb")


def execution(**changes: object) -> TaskExecution:
    base = TaskExecution(
        id="e1",
        task_path="t.x",
        backend="default",
        queue_name="default",
        enqueued_at=NOW - timedelta(minutes=1),
        run_after=NOW - timedelta(minutes=1),
    )
    return base.evolve(**changes)


def claimed(current: TaskExecution, owner: str = "o1", now: datetime = NOW) -> TaskExecution:
    return transitions.claim(
        current, SETTINGS, owner=owner, worker_id=owner, now=now, lease_duration=LEASE
    )


def test_claim_sets_the_lease_and_counts_the_attempt() -> None:
    after = claimed(execution())
    assert after.status == TaskResultStatus.RUNNING
    assert after.attempts == 1
    assert after.lease_owner == "o1"
    assert after.lease_expires_at == NOW + LEASE
    assert after.started_at == NOW


def test_started_at_is_kept_across_attempts() -> None:
    first = claimed(execution(max_attempts=3))
    again = transitions.fail(first, SETTINGS, owner="o1", now=NOW, error=ERROR, retryable=True)
    later = NOW + timedelta(minutes=5)
    second = claimed(again, owner="o2", now=later)
    assert second.started_at == NOW
    assert second.last_attempted_at == later
    assert second.attempts == 2


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        ({"status": TaskResultStatus.SUCCESSFUL}, ClaimReason.FINISHED),
        ({"status": TaskResultStatus.FAILED}, ClaimReason.FINISHED),
        (
            {
                "status": TaskResultStatus.RUNNING,
                "lease_owner": "x",
                "lease_expires_at": NOW + LEASE,
            },
            ClaimReason.LEASE_HELD,
        ),
        ({"run_after": NOW + timedelta(seconds=1)}, ClaimReason.NOT_DUE),
        ({"run_once": True, "attempts": 1}, ClaimReason.RUN_ONCE_ATTEMPTED),
        ({"max_attempts": 2, "attempts": 2}, ClaimReason.ATTEMPTS_EXHAUSTED),
        ({"cancelled_at": NOW}, ClaimReason.CANCELLED),
    ],
)
def test_claim_refusals(state: dict[str, object], reason: ClaimReason) -> None:
    with pytest.raises(ClaimRefused) as refused:
        claimed(execution(**state))
    assert refused.value.reason == reason


@pytest.mark.parametrize(
    "state", [{"run_once": True, "attempts": 1}, {"max_attempts": 1, "attempts": 1}]
)
def test_refusals_that_end_the_execution_carry_a_failed_state(state: dict[str, object]) -> None:
    with pytest.raises(ClaimRefused) as refused:
        claimed(execution(**state))
    assert refused.value.execution is not None
    assert refused.value.execution.status == TaskResultStatus.FAILED
    assert refused.value.execution.finished_at == NOW


def test_unlimited_attempts() -> None:
    current = execution(max_attempts=None, attempts=1000)
    assert claimed(current).attempts == 1001


def test_only_the_owner_may_write() -> None:
    running = claimed(execution())
    for write in (
        lambda: transitions.renew(running, owner="o2", now=NOW, lease_duration=LEASE),
        lambda: transitions.succeed(running, SETTINGS, owner="o2", now=NOW, return_value=1),
        lambda: transitions.fail(
            running, SETTINGS, owner="o2", now=NOW, error=ERROR, retryable=True
        ),
        lambda: transitions.release(running, owner="o2"),
    ):
        with pytest.raises(LeaseLost, match="not 'o2'"):
            write()


@pytest.mark.parametrize(
    ("state", "retryable", "status"),
    [
        ({"max_attempts": 3}, True, TaskResultStatus.READY),
        ({"max_attempts": 1}, True, TaskResultStatus.FAILED),
        ({"max_attempts": 3}, False, TaskResultStatus.FAILED),
        ({"max_attempts": None}, True, TaskResultStatus.READY),
        ({"max_attempts": 3, "run_once": True}, True, TaskResultStatus.FAILED),
    ],
)
def test_fail_retries_only_when_allowed(
    state: dict[str, object], retryable: bool, status: TaskResultStatus
) -> None:
    running = claimed(execution(**state))
    after = transitions.fail(
        running, SETTINGS, owner="o1", now=NOW, error=ERROR, retryable=retryable
    )
    assert after.status == status
    assert after.lease_owner is None
    assert after.errors == [ERROR]
    assert (after.finished_at is not None) == (status == TaskResultStatus.FAILED)


def test_retention_differs_for_success_and_failure() -> None:
    custom = StoreSettings(retention_successful=timedelta(days=1), retention_failed=None)
    ok = transitions.succeed(claimed(execution()), custom, owner="o1", now=NOW, return_value=None)
    assert ok.expires_at == NOW + timedelta(days=1)
    bad = transitions.fail(
        claimed(execution()), custom, owner="o1", now=NOW, error=ERROR, retryable=False
    )
    assert bad.expires_at is None


def test_cancel() -> None:
    done = execution(status=TaskResultStatus.SUCCESSFUL, finished_at=NOW)
    assert transitions.cancel(done, SETTINGS, now=NOW, force=True) == (
        done,
        transitions.CancelOutcome.ALREADY_FINISHED,
    )
    ready, outcome = transitions.cancel(execution(), SETTINGS, now=NOW, force=False)
    assert outcome == transitions.CancelOutcome.CANCELLED
    assert ready.status == TaskResultStatus.FAILED
    running, outcome = transitions.cancel(claimed(execution()), SETTINGS, now=NOW, force=True)
    assert outcome == transitions.CancelOutcome.REQUESTED
    assert running.status == TaskResultStatus.RUNNING
    assert running.force_cancel
    dead = claimed(execution())
    closed, outcome = transitions.cancel(dead, SETTINGS, now=NOW + LEASE, force=False)
    assert outcome == transitions.CancelOutcome.CANCELLED  # its worker is gone
    assert closed.status == TaskResultStatus.FAILED


def test_histories_are_capped_by_count_and_bytes() -> None:
    errors: list[ErrorEntry] = []
    for i in range(10):
        errors = append_error(
            errors,
            ErrorEntry(exception_class_path=f"E{i}", traceback="t" * 3000),
            max_entries=3,
            max_bytes=7_000,
        )
    assert [e.exception_class_path for e in errors] == ["E8", "E9"]
    huge = append_error(
        [],
        ErrorEntry(exception_class_path="E", traceback="a" * 50_000 + "END"),
        max_entries=3,
        max_bytes=10_000,
    )
    assert huge[0].traceback.endswith("END")
    assert huge[0].traceback.startswith("[... ")
    assert len(huge[0].traceback.encode()) < 6_000
    workers: list[str] = []
    for i in range(5):
        workers = append_worker(workers, f"w{i}", max_entries=3)
    assert workers == ["w2", "w3", "w4"]


GRACE = timedelta(seconds=60)
STALE = timedelta(minutes=15)


def dispatched(**changes: object) -> TaskExecution:
    state: dict[str, object] = {
        "dispatch_state": DispatchState.DISPATCHED,
        "dispatched_at": NOW,
        "max_attempts": None,
    }
    return execution(**{**state, **changes})


def needs(current: TaskExecution, now: datetime) -> bool:
    return transitions.needs_redispatch(current, now, grace=GRACE, stale=STALE)


def test_a_dead_workers_attempt_is_redispatched_once_after_the_grace() -> None:
    running = claimed(dispatched())  # lease until NOW + 30 s
    assert not needs(running, NOW + timedelta(seconds=29))  # live lease
    assert not needs(running, NOW + timedelta(seconds=89))  # expired, within the grace
    assert needs(running, NOW + timedelta(seconds=91))
    marked = transitions.redispatch(running)
    assert marked.dispatch_state == DispatchState.PENDING
    assert (marked.redispatches, marked.redispatched_attempt) == (1, 1)
    sent = marked.evolve(
        dispatch_state=DispatchState.DISPATCHED, dispatched_at=NOW + timedelta(seconds=91)
    )
    assert not needs(sent, NOW + timedelta(seconds=120))  # this attempt was re-sent already
    assert needs(sent, NOW + timedelta(seconds=91) + STALE)  # ...and nothing came of it
    taken_over = claimed(sent, owner="o2", now=NOW + timedelta(seconds=200))
    assert needs(taken_over, NOW + timedelta(seconds=200 + 30 + 61))  # a new attempt died


def test_ready_is_redispatched_only_when_stale() -> None:
    ready = dispatched()
    assert not needs(ready, NOW + STALE - timedelta(seconds=1))
    assert needs(ready, NOW + STALE)
    later = ready.evolve(run_after=NOW + timedelta(hours=1))  # a deferred task isn't late
    assert not needs(later, NOW + STALE)


@pytest.mark.parametrize(
    "state",
    [
        {"dispatch_state": DispatchState.PENDING},  # the PENDING sweep owns these
        {"dispatch_state": DispatchState.LOCAL},  # a local worker reclaims these
        {"status": TaskResultStatus.SUCCESSFUL},
        {"status": TaskResultStatus.FAILED},
    ],
)
def test_never_redispatched(state: dict[str, object]) -> None:
    assert not needs(dispatched(**state), NOW + timedelta(days=1))


def test_a_delivery_proves_the_dispatch() -> None:
    pending = execution(dispatch_state=DispatchState.PENDING)
    assert claimed(pending).dispatch_state == DispatchState.DISPATCHED
    local = execution(dispatch_state=DispatchState.LOCAL)
    assert claimed(local).dispatch_state == DispatchState.LOCAL


def test_the_claim_records_the_delivery_that_runs_the_attempt() -> None:
    # enqueue() writes nothing after a successful send: the claim is the dispatch record.
    lost = execution(
        dispatch_state=DispatchState.PENDING, dispatch_error="DEADLINE_EXCEEDED", max_attempts=None
    )
    first = transitions.claim(
        lost,
        SETTINGS,
        owner="o1",
        worker_id="o1",
        now=NOW,
        lease_duration=LEASE,
        platform_names={"cloud_run_execution": "projects/p/locations/l/jobs/j/executions/e1"},
    )
    assert (first.dispatch_state, first.dispatch_error) == (DispatchState.DISPATCHED, None)
    assert first.cloud_run_execution == "projects/p/locations/l/jobs/j/executions/e1"
    assert first.dispatched_at is None  # needs_redispatch counts from enqueued_at then
    # A later attempt in another job execution (a re-dispatch): force-cancel stops that one.
    expired = NOW + LEASE
    second = transitions.claim(
        first,
        SETTINGS,
        owner="o2",
        worker_id="o2",
        now=expired,
        lease_duration=LEASE,
        platform_names={"cloud_run_execution": "projects/p/locations/l/jobs/j/executions/e2"},
    )
    assert second.cloud_run_execution.endswith("/e2")
    # A claim that names nothing (a delivery without the platform's variables) keeps it.
    third = claimed(second, owner="o3", now=expired + LEASE)
    assert third.cloud_run_execution == second.cloud_run_execution


MISSING = ErrorEntry(
    exception_class_path="django_tasks_fs.exceptions.MissingCloudResource",
    traceback="MissingCloudResource: The Cloud Tasks queue 'q' does not exist ...\n",
)


def test_a_refused_dispatch_closes_a_ready_execution_failed_for_good() -> None:
    pending = execution(dispatch_state=DispatchState.PENDING)
    after = transitions.refuse_dispatch(pending, SETTINGS, now=NOW, error=MISSING)
    assert after.status == TaskResultStatus.FAILED
    assert after.finished_at == NOW
    assert after.errors == [MISSING]
    assert after.dispatch_state == DispatchState.REFUSED
    assert after.dispatch_error == MISSING.traceback.strip()


def test_a_refused_dispatch_leaves_finished_and_live_attempts_alone() -> None:
    done = execution(status=TaskResultStatus.SUCCESSFUL, finished_at=NOW)
    assert transitions.refuse_dispatch(done, SETTINGS, now=NOW, error=MISSING) == done
    running = claimed(execution(dispatch_state=DispatchState.PENDING))
    assert transitions.refuse_dispatch(running, SETTINGS, now=NOW, error=MISSING) == running
    expired = transitions.refuse_dispatch(running, SETTINGS, now=NOW + LEASE, error=MISSING)
    assert expired.status == TaskResultStatus.FAILED
    assert expired.lease_owner is None
