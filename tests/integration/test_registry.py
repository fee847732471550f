"""django_tasks_fs.registry.backend_holding: which backend an execution id belongs to."""

from __future__ import annotations

from typing import Any

import pytest

from django_tasks_fs.exceptions import ExecutionNotFound
from django_tasks_fs.registry import backend_holding, get_backend
from tests import tasks


def test_the_backend_named_in_the_document(tasks_project: str) -> None:
    result = tasks.echo.using(backend="jobs").enqueue(1)
    assert backend_holding(result.id).alias == "jobs"


def test_an_unknown_id_is_not_found_in_any_backend(tasks_project: str) -> None:
    with pytest.raises(
        ExecutionNotFound, match=r"No task execution with id 'f00' in any backend\."
    ):
        backend_holding("f00")


def test_an_alias_no_longer_configured_falls_back_to_the_store_holding_it(backend: Any) -> None:
    result = tasks.echo.enqueue(1)
    backend.executions._compare_and_set(
        result.id, lambda current, now: current.evolve(backend="renamed")
    )
    assert backend_holding(result.id) is get_backend("default")
