"""Execution lifecycle on the Firestore emulator: create, claim, renew, finish, cancel."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.tasks import TaskResultStatus
from django.tasks.exceptions import TaskResultDoesNotExist

from django_tasks_fs.exceptions import ExecutionNotFound
from django_tasks_fs.store import CancelOutcome, ErrorEntry, ExecutionStore
from django_tasks_fs.store.errors import ClaimReason, ClaimRefused, LeaseLost
from tests.conftest import ExecutionFactory, wait_until

LEASE = timedelta(seconds=60)
SHORT = timedelta(milliseconds=300)
ERROR = ErrorEntry(
    exception_class_path="builtins.ValueError", traceback="Traceback...\nValueError\n"
)


def test_create_then_get_round_trips(
    executions: ExecutionStore, make_execution: ExecutionFactory
) -> None:
    created = make_execution(args=[1, [2, [3]]], kwargs={"k": {"n": None}}, priority=5)
    loaded = executions.get(created.id)
    assert loaded == created
    assert loaded.update_time == created.update_time
    assert loaded.status == TaskResultStatus.READY
    assert loaded.attempts == 0


def test_get_unknown_raises(executions: ExecutionStore) -> None:
    with pytest.raises(ExecutionNotFound, match="'nope'") as info:
        executions.get("nope")
    assert isinstance(info.value, TaskResultDoesNotExist)  # Django's contract


@pytest.mark.parametrize("bad_id", ["", "a/b", ".."])
def test_hostile_ids_are_not_found(executions: ExecutionStore, bad_id: str) -> None:
    with pytest.raises(ExecutionNotFound):
        executions.get(bad_id)


def test_claim_and_succeed(executions: ExecutionStore, make_execution: ExecutionFactory) -> None:
    execution = make_execution()
    lease = executions.claim(execution.id, worker_id="w1", lease_duration=LEASE)
    assert lease.attempt == 1
    running = executions.get(execution.id)
    assert running.status == TaskResultStatus.RUNNING
    assert running.lease_owner == lease.owner
    assert running.worker_ids == ["w1"]
    assert running.started_at is not None
    assert running.started_at == running.last_attempted_at

    done = executions.succeed(lease, {"answer": 42})
    stored = executions.get(execution.id)
    assert stored == done
    assert stored.status == TaskResultStatus.SUCCESSFUL
    assert stored.return_value == {"answer": 42}
    assert stored.lease_owner is None
    assert stored.finished_at is not None
    assert stored.expires_at is not None
    assert stored.expires_at - stored.finished_at == timedelta(days=14)


def test_retryable_failure_goes_back_to_ready_then_fails_when_exhausted(
    executions: ExecutionStore, make_execution: ExecutionFactory
) -> None:
    execution = make_execution(max_attempts=2)
    lease = executions.claim(execution.id, worker_id="w1", lease_duration=LEASE)
    retry_at = executions.clock.now() + timedelta(seconds=2)  # fail + claim well within it
    after = executions.fail(lease, ERROR, retryable=True, retry_at=retry_at)
    assert after.status == TaskResultStatus.READY
    assert after.run_after == retry_at
    with pytest.raises(ClaimRefused) as refused:
        executions.claim(execution.id, worker_id="w2", lease_duration=LEASE)
    assert refused.value.reason == ClaimReason.NOT_DUE
    wait_until(lambda: executions.clock.now() > retry_at)
    lease2 = executions.claim(execution.id, worker_id="w2", lease_duration=LEASE)
    assert lease2.attempt == 2
    final = executions.fail(lease2, ERROR, retryable=True)
    assert final.status == TaskResultStatus.FAILED
    assert [e.exception_class_path for e in executions.get(execution.id).errors] == [
        "builtins.ValueError",
        "builtins.ValueError",
    ]


def test_permanent_failure_does_not_retry(
    executions: ExecutionStore, make_execution: ExecutionFactory
) -> None:
    execution = make_execution(max_attempts=5)
    lease = executions.claim(execution.id, worker_id="w1", lease_duration=LEASE)
    assert executions.fail(lease, ERROR, retryable=False).status == TaskResultStatus.FAILED


def test_claim_refusals(executions: ExecutionStore, make_execution: ExecutionFactory) -> None:
    with pytest.raises(ExecutionNotFound):
        executions.claim("missing", worker_id="w", lease_duration=LEASE)

    held = make_execution()
    executions.claim(held.id, worker_id="w1", lease_duration=LEASE)
    with pytest.raises(ClaimRefused) as refused:
        executions.claim(held.id, worker_id="w2", lease_duration=LEASE)
    assert refused.value.reason == ClaimReason.LEASE_HELD

    future = make_execution(run_after=executions.clock.now() + timedelta(hours=1))
    with pytest.raises(ClaimRefused) as refused:
        executions.claim(future.id, worker_id="w", lease_duration=LEASE)
    assert refused.value.reason == ClaimReason.NOT_DUE

    done = make_execution()
    executions.succeed(executions.claim(done.id, worker_id="w", lease_duration=LEASE), None)
    with pytest.raises(ClaimRefused) as refused:
        executions.claim(done.id, worker_id="w", lease_duration=LEASE)
    assert refused.value.reason == ClaimReason.FINISHED


def test_run_once_expired_lease_is_closed_not_rerun(
    executions: ExecutionStore, make_execution: ExecutionFactory
) -> None:
    execution = make_execution(run_once=True, max_attempts=5)
    lease = executions.claim(execution.id, worker_id="w1", lease_duration=SHORT)
    wait_until(lambda: executions.clock.now() > lease.expires_at)  # type: ignore[operator]
    with pytest.raises(ClaimRefused) as refused:
        executions.claim(execution.id, worker_id="w2", lease_duration=LEASE)
    assert refused.value.reason == ClaimReason.RUN_ONCE_ATTEMPTED
    stored = executions.get(execution.id)
    assert stored.status == TaskResultStatus.FAILED
    assert stored.errors[-1].exception_class_path == "django_tasks_fs.exceptions.WorkerLost"
    assert stored.attempts == 1


def test_exhausted_expired_lease_is_closed(
    executions: ExecutionStore, make_execution: ExecutionFactory
) -> None:
    execution = make_execution(max_attempts=1)
    lease = executions.claim(execution.id, worker_id="w1", lease_duration=SHORT)
    wait_until(lambda: executions.clock.now() > lease.expires_at)  # type: ignore[operator]
    with pytest.raises(ClaimRefused) as refused:
        executions.claim(execution.id, worker_id="w2", lease_duration=LEASE)
    assert refused.value.reason == ClaimReason.ATTEMPTS_EXHAUSTED
    assert executions.get(execution.id).status == TaskResultStatus.FAILED


def test_max_attempts_override_from_platform(
    executions: ExecutionStore, make_execution: ExecutionFactory
) -> None:
    execution = make_execution(max_attempts=1)
    lease = executions.claim(execution.id, worker_id="w", lease_duration=LEASE, max_attempts=3)
    assert lease.execution.max_attempts == 3
    assert executions.fail(lease, ERROR, retryable=True).status == TaskResultStatus.READY


def test_lease_loser_cannot_renew_finish_or_overwrite(
    executions: ExecutionStore, make_execution: ExecutionFactory
) -> None:
    execution = make_execution(max_attempts=5)
    loser = executions.claim(execution.id, worker_id="w1", lease_duration=SHORT)
    wait_until(lambda: executions.clock.now() > loser.expires_at)  # type: ignore[operator]
    winner = executions.claim(execution.id, worker_id="w2", lease_duration=LEASE)
    before = executions.get(execution.id)

    with pytest.raises(LeaseLost):
        executions.renew(loser, lease_duration=LEASE)
    with pytest.raises(LeaseLost):
        executions.succeed(loser, "loser result")
    with pytest.raises(LeaseLost):
        executions.fail(loser, ERROR, retryable=True)
    with pytest.raises(LeaseLost):
        executions.release(loser)

    after = executions.get(execution.id)
    assert after == before
    assert after.update_time == before.update_time
    assert after.lease_owner == winner.owner
    assert executions.succeed(winner, "winner result").return_value == "winner result"


def test_renew_extends_lease_and_reports_cancel(
    executions: ExecutionStore, make_execution: ExecutionFactory
) -> None:
    execution = make_execution()
    lease = executions.claim(execution.id, worker_id="w1", lease_duration=timedelta(seconds=5))
    renewed = executions.renew(lease, lease_duration=timedelta(seconds=60))
    assert renewed.expires_at > lease.expires_at  # type: ignore[operator]
    assert not renewed.cancel_requested

    _, outcome = executions.cancel(execution.id, force=True)
    assert outcome == CancelOutcome.REQUESTED
    # The stale lease's CAS base is out of date: the store re-reads, sees it still owns
    # the lease, renews, and reports the cancel request.
    again = executions.renew(renewed, lease_duration=timedelta(seconds=60))
    assert again.cancel_requested
    assert again.force_cancel
    final = executions.fail(again, ERROR, retryable=True)
    assert final.status == TaskResultStatus.FAILED  # a cancelled attempt never retries


def test_success_after_a_cancel_request_is_recorded_as_cancelled(
    executions: ExecutionStore, make_execution: ExecutionFactory
) -> None:
    execution = make_execution()
    lease = executions.claim(execution.id, worker_id="w1", lease_duration=LEASE)
    executions.cancel(execution.id)
    final = executions.succeed(lease, "late result")
    assert final.status == TaskResultStatus.FAILED
    assert final.return_value is None
    assert final.errors[-1].exception_class_path == "django_tasks_fs.exceptions.TaskCancelledError"


def test_cancel_ready_fails_it_and_it_never_runs(
    executions: ExecutionStore, make_execution: ExecutionFactory
) -> None:
    execution = make_execution()
    cancelled, outcome = executions.cancel(execution.id)
    assert outcome == CancelOutcome.CANCELLED
    assert cancelled.status == TaskResultStatus.FAILED
    assert (
        cancelled.errors[-1].exception_class_path == "django_tasks_fs.exceptions.TaskCancelledError"
    )
    with pytest.raises(ClaimRefused) as refused:
        executions.claim(execution.id, worker_id="w", lease_duration=LEASE)
    assert refused.value.reason == ClaimReason.FINISHED


def test_cancel_successful_changes_nothing(
    executions: ExecutionStore, make_execution: ExecutionFactory
) -> None:
    execution = make_execution()
    executions.succeed(executions.claim(execution.id, worker_id="w", lease_duration=LEASE), 7)
    before = executions.get(execution.id)
    for force in (False, True):
        _after, outcome = executions.cancel(execution.id, force=force)
        assert outcome == CancelOutcome.ALREADY_FINISHED
    stored = executions.get(execution.id)
    assert stored == before
    assert stored.update_time == before.update_time
    assert stored.status == TaskResultStatus.SUCCESSFUL
    assert stored.return_value == 7


def test_release_hands_back_without_counting(
    executions: ExecutionStore, make_execution: ExecutionFactory
) -> None:
    execution = make_execution()
    lease = executions.claim(execution.id, worker_id="w1", lease_duration=LEASE)
    released = executions.release(lease)
    assert released.status == TaskResultStatus.READY
    assert released.attempts == 0
    assert released.worker_ids == []
    assert released.errors == []
    assert executions.claim(execution.id, worker_id="w2", lease_duration=LEASE).attempt == 1


def test_error_history_is_capped_but_attempts_are_counted(
    store_settings: object, executions: ExecutionStore, make_execution: ExecutionFactory
) -> None:
    execution = make_execution(max_attempts=None)  # unlimited
    limit = executions.settings.max_history_entries
    for attempt in range(1, limit + 4):
        lease = executions.claim(execution.id, worker_id=f"w{attempt}", lease_duration=LEASE)
        assert lease.attempt == attempt
        big = ErrorEntry(exception_class_path="builtins.ValueError", traceback="x" * 100_000)
        executions.fail(lease, big, retryable=True)
    stored = executions.get(execution.id)
    assert stored.attempts == limit + 3
    assert len(stored.worker_ids) == limit
    assert stored.worker_ids[-1] == f"w{limit + 3}"
    assert 1 <= len(stored.errors) <= limit
    total = sum(len(e.traceback.encode()) for e in stored.errors)
    assert total <= executions.settings.max_history_bytes
    assert "truncated" in stored.errors[-1].traceback
