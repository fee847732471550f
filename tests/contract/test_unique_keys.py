"""store.unique_keys on both stores: the key and its execution written together, held
while unfinished, taken over once finished, and exactly one winner of a race."""

from __future__ import annotations

import threading
from datetime import timedelta

from django_tasks_fs.store import ExecutionStore, TaskExecution, new_execution_id
from django_tasks_fs.store.unique_keys import UniqueKeys, UniqueOutcome, unique_key_id

KEY = "sync:7"


def fresh(executions: ExecutionStore) -> TaskExecution:
    now = executions.clock.now()
    return TaskExecution(
        id=new_execution_id(),
        task_path="tests.tasks.noop",
        backend="default",
        queue_name="default",
        enqueued_at=now,
        run_after=now,
    )


def test_a_new_key_writes_key_and_execution_in_one_commit(executions: ExecutionStore) -> None:
    keys = UniqueKeys(executions)
    execution = fresh(executions)
    outcome = keys.create(execution, key=KEY)
    assert outcome.created
    stored = executions.get(execution.id)
    assert stored.update_time == outcome.execution.update_time  # one commit: one time
    key = executions.documents.get(
        executions.settings.unique_keys_collection, unique_key_id("default", stored.task_path, KEY)
    )
    assert key.data is not None
    assert key.update_time == stored.update_time
    assert (key.data["key"], key.data["execution_id"]) == (KEY, execution.id)
    assert stored.unique_key == outcome.execution.unique_key == KEY  # the admin shows it


def test_held_while_unfinished_then_taken_over(executions: ExecutionStore) -> None:
    keys = UniqueKeys(executions)
    first = keys.create(fresh(executions), key=KEY).execution
    held = keys.create(fresh(executions), key=KEY)
    assert (held.created, held.execution.id) == (False, first.id)
    lease = executions.claim(first.id, worker_id="w", lease_duration=timedelta(minutes=1))
    assert keys.create(fresh(executions), key=KEY).execution.id == first.id  # RUNNING
    executions.succeed(lease, None)
    second = keys.create(fresh(executions), key=KEY)
    assert second.created
    assert executions.get(second.execution.id).unique_key == KEY  # a takeover keeps it too
    assert keys.holder_id("default", "tests.tasks.noop", KEY) == second.execution.id
    assert executions.get(first.id).id == first.id  # the finished one is left alone


def test_one_of_many_racing_takeovers_wins(executions: ExecutionStore) -> None:
    keys = UniqueKeys(executions)
    first = keys.create(fresh(executions), key=KEY).execution
    executions.cancel(first.id)  # FAILED: the key is free to take over
    barrier = threading.Barrier(8)
    outcomes: list[UniqueOutcome] = []

    def enqueue() -> None:
        candidate = fresh(executions)
        barrier.wait()
        outcomes.append(keys.create(candidate, key=KEY))

    threads = [threading.Thread(target=enqueue) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(outcomes) == 8
    winners = [o.execution.id for o in outcomes if o.created]
    assert len(winners) == 1
    assert {o.execution.id for o in outcomes} == set(winners)
    assert keys.holder_id("default", "tests.tasks.noop", KEY) == winners[0]
