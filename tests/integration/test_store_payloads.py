"""Payloads through the real emulator: exact round trips and refusals that write nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from django_tasks_fs.exceptions import ExecutionNotFound, NotJSONSerializable, PayloadTooLarge
from django_tasks_fs.store import ExecutionStore, new_execution_id
from tests.conftest import ExecutionFactory
from tests.unit.test_codec import json_values, same

LEASE = timedelta(seconds=60)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(args=json_values, kwargs=json_values)
def test_payloads_round_trip_through_firestore(
    executions: ExecutionStore, make_execution: ExecutionFactory, args: Any, kwargs: Any
) -> None:
    created = make_execution(args=[args, [[args]]], kwargs={"k": kwargs, "big": 2**70})
    loaded = executions.get(created.id)
    assert same(loaded.args, [args, [[args]]])
    assert same(loaded.kwargs, {"k": kwargs, "big": 2**70})
    lease = executions.claim(created.id, worker_id="w", lease_duration=LEASE)
    executions.succeed(lease, {"echo": [args, kwargs]})
    assert same(executions.get(created.id).return_value, {"echo": [args, kwargs]})


def test_oversized_arguments_are_refused_and_nothing_is_written(
    executions: ExecutionStore, make_execution: ExecutionFactory
) -> None:
    execution_id = new_execution_id()
    with pytest.raises(PayloadTooLarge, match="The task's arguments is too large"):
        make_execution(id=execution_id, args=["x" * (1024 * 1024)])
    with pytest.raises(ExecutionNotFound):
        executions.get(execution_id)


def test_arguments_just_under_the_limit_are_stored(make_execution: ExecutionFactory) -> None:
    created = make_execution(args=["x" * (1024 * 1024 - 4096)])
    assert len(created.args[0]) == 1024 * 1024 - 4096


def test_non_json_arguments_are_refused_and_nothing_is_written(
    executions: ExecutionStore, make_execution: ExecutionFactory
) -> None:
    execution_id = new_execution_id()
    with pytest.raises(NotJSONSerializable, match=r"kwargs\['when'\]: value of type set"):
        make_execution(id=execution_id, kwargs={"when": {1}})
    with pytest.raises(ExecutionNotFound):
        executions.get(execution_id)


def test_oversized_return_value_is_refused_and_the_lease_kept(
    executions: ExecutionStore, make_execution: ExecutionFactory
) -> None:
    created = make_execution(args=["x" * 600_000])
    lease = executions.claim(created.id, worker_id="w", lease_duration=LEASE)
    before = executions.get(created.id)
    with pytest.raises(PayloadTooLarge, match="The task's return value is too large"):
        executions.succeed(lease, "y" * 600_000)
    after = executions.get(created.id)
    assert after == before
    assert after.update_time == before.update_time
    with pytest.raises(NotJSONSerializable, match="return value: value of type set"):
        executions.succeed(lease, {1, 2})
    # The owner can still record the failure it turns into.
    assert executions.fail(lease, before.errors[0] if before.errors else _err(), retryable=False)


def _err() -> Any:
    from django_tasks_fs.store import ErrorEntry

    return ErrorEntry(
        exception_class_path="django_tasks_fs.exceptions.PayloadTooLarge", traceback=""
    )
