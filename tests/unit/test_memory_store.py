"""The ``store`` option: backends on this process's memory, no emulator needed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.tasks import TaskResultStatus, task_backends

from django_tasks_fs.options import parse_options
from django_tasks_fs.store import ExecutionStore, StoreSettings
from django_tasks_fs.store.ops import MemoryOps, reset_memory
from django_tasks_fs.testing import TaskRunner
from tests import tasks


@pytest.fixture
def memory_project(settings: Any) -> Iterator[str]:
    """Every TASKS backend on the in-memory store of a fresh project."""
    from tests.settings import tasks_setting

    project = f"mem-{uuid.uuid4().hex[:8]}"
    settings.TASKS = tasks_setting(project, store="memory")
    yield project
    reset_memory()


def test_the_option_is_validated_and_reaches_the_store_settings() -> None:
    options, problems = parse_options("default", {"store": "memory"})
    assert problems == []
    assert options.store_settings().in_memory
    _, problems = parse_options("default", {"store": "redis"})
    assert [(p.id, p.key) for p in problems] == [("django_tasks_fs.E002", "store")]
    assert "expected 'firestore' or 'memory'" in problems[0].message
    assert not parse_options("default", {})[0].store_settings().in_memory


def test_stores_of_one_project_and_database_share_documents(memory_project: str) -> None:
    backend: Any = task_backends["default"]
    again = ExecutionStore(backend.config.store_settings())
    other = ExecutionStore(StoreSettings(project=memory_project, database="db-b", store="memory"))
    assert isinstance(again.documents, MemoryOps)
    assert again.documents.database is backend.executions.documents.database
    execution_id = tasks.noop.enqueue().id
    assert again.get(execution_id).id == execution_id
    assert other.count() == 0
    reset_memory()
    assert again.count() == 0


def test_enqueue_run_and_read_a_result_without_the_emulator(memory_project: str) -> None:
    result = tasks.noop.enqueue()
    assert result.status == TaskResultStatus.READY
    (done,) = TaskRunner().run_all()
    assert done.id == result.id
    assert done.status == TaskResultStatus.SUCCESSFUL
    assert task_backends["default"].get_result(result.id).status == TaskResultStatus.SUCCESSFUL
    assert "in-memory store" in task_backends["default"].executions.settings.target()
