"""Many threads racing on the same documents of the real emulator: one winner each."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict
from datetime import timedelta

from django.tasks import TaskResultStatus

from django_tasks_fs.store import ExecutionStore, Lease, TaskExecution
from django_tasks_fs.store.errors import ClaimReason, ClaimRefused
from tests.conftest import ExecutionFactory, wait_until

THREADS = 16
EXECUTIONS = 50
LEASE = timedelta(seconds=120)


def race_to_claim(
    executions: ExecutionStore, targets: list[TaskExecution]
) -> tuple[dict[str, list[Lease]], Counter[ClaimReason], list[BaseException]]:
    """Every thread tries to claim every execution, in its own random order."""
    wins: dict[str, list[Lease]] = defaultdict(list)
    reasons: Counter[ClaimReason] = Counter()
    unexpected: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def worker(index: int) -> None:
        order = list(targets)
        random.Random(index).shuffle(order)
        start.wait()
        for execution in order:
            try:
                lease = executions.claim(
                    execution.id, worker_id=f"thread-{index}", lease_duration=LEASE
                )
            except ClaimRefused as exc:
                with lock:
                    reasons[exc.reason] += 1
            except BaseException as exc:
                with lock:
                    unexpected.append(exc)
            else:
                with lock:
                    wins[execution.id].append(lease)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    return wins, reasons, unexpected


def assert_one_winner_each(
    targets: list[TaskExecution],
    wins: dict[str, list[Lease]],
    reasons: Counter[ClaimReason],
    unexpected: list[BaseException],
) -> None:
    assert unexpected == []
    assert {execution_id: len(leases) for execution_id, leases in wins.items()} == {
        t.id: 1 for t in targets
    }
    # Every loser was told why: the winner holds a live lease.
    assert reasons == Counter({ClaimReason.LEASE_HELD: EXECUTIONS * (THREADS - 1)})


def test_sixteen_threads_claim_each_execution_exactly_once(
    executions: ExecutionStore, make_execution: ExecutionFactory
) -> None:
    targets = [make_execution() for _ in range(EXECUTIONS)]
    wins, reasons, unexpected = race_to_claim(executions, targets)
    assert_one_winner_each(targets, wins, reasons, unexpected)
    for target in targets:
        stored = executions.get(target.id)
        (lease,) = wins[target.id]
        assert stored.status == TaskResultStatus.RUNNING
        assert stored.lease_owner == lease.owner
        assert stored.attempts == 1
        assert len(stored.worker_ids) == 1


def test_sixteen_threads_take_over_each_expired_lease_exactly_once(
    executions: ExecutionStore, make_execution: ExecutionFactory
) -> None:
    targets = [make_execution(max_attempts=5) for _ in range(EXECUTIONS)]
    dead = [
        executions.claim(t.id, worker_id="dead-worker", lease_duration=timedelta(milliseconds=50))
        for t in targets
    ]
    latest_expiry = max(lease.expires_at for lease in dead if lease.expires_at)
    wait_until(lambda: executions.clock.now() > latest_expiry)

    wins, reasons, unexpected = race_to_claim(executions, targets)
    assert_one_winner_each(targets, wins, reasons, unexpected)
    for target in targets:
        stored = executions.get(target.id)
        assert stored.attempts == 2
        assert stored.worker_ids[0] == "dead-worker"
        assert [e.exception_class_path for e in stored.errors] == [
            "django_tasks_fs.exceptions.WorkerLost"
        ]


def test_concurrent_heartbeats_and_finish_by_the_owner_do_not_lose_the_result(
    executions: ExecutionStore, make_execution: ExecutionFactory
) -> None:
    """The owner's heartbeat thread and its finishing thread race on one lease object."""
    execution = make_execution()
    lease = executions.claim(execution.id, worker_id="w", lease_duration=LEASE)
    stop = threading.Event()
    renewals: list[int] = []

    def heartbeat() -> None:
        current = lease
        while not stop.is_set():
            try:
                current = executions.renew(current, lease_duration=LEASE)
            except Exception:
                return  # the lease ended when the result was written
            renewals.append(1)
            time.sleep(0.01)  # a very eager heartbeat (real ones wait seconds)

    thread = threading.Thread(target=heartbeat)
    thread.start()
    wait_until(lambda: len(renewals) >= 3)
    done = executions.succeed(lease, "result")  # stale CAS base: must re-read and still win
    stop.set()
    thread.join(timeout=30)
    stored = executions.get(execution.id)
    assert done.status == TaskResultStatus.SUCCESSFUL
    assert stored.status == TaskResultStatus.SUCCESSFUL
    assert stored.return_value == "result"
