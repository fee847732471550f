"""Every record of an attempt carries the structured attributes (in-memory store)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from django_tasks_fs.execution.attempt import Attempt
from django_tasks_fs.logging import TaskAttributes
from tests import tasks

IDENTITY = ("execution_id", "task_path", "backend", "queue", "attempt", "worker_id")


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.addFilter(TaskAttributes())  # as run_tasks and execute_task configure it

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def captured() -> Iterator[Capture]:
    handler = Capture()
    logger = logging.getLogger("django_tasks_fs")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_a_failing_attempt(backend: Any, captured: Capture) -> None:
    result = tasks.failing.enqueue("kaput")
    outcome = Attempt(backend, result.id, worker_id="w1").run()
    assert str(outcome.outcome) == "retry"
    assert captured.records
    for record in captured.records:
        values = {name: getattr(record, name) for name in IDENTITY}
        assert values == {
            "execution_id": result.id,
            "task_path": "tests.tasks.failing",
            "backend": "default",
            "queue": "default",
            "attempt": 1,
            "worker_id": "w1",
        }, record.getMessage()
    (failed,) = [r for r in captured.records if "attempt failed" in r.getMessage()]
    assert failed.outcome == "retry"  # type: ignore[attr-defined]
    assert failed.error_class == "builtins.ValueError"  # type: ignore[attr-defined]
    assert failed.duration >= 0  # type: ignore[attr-defined]


def test_a_refused_claim(backend: Any, captured: Capture) -> None:
    result = tasks.noop.enqueue()
    assert str(Attempt(backend, result.id, worker_id="w1").run().outcome) == "succeeded"
    captured.records.clear()
    assert str(Attempt(backend, result.id, worker_id="w2").run().outcome) == "refused"
    (refused,) = captured.records
    assert (refused.execution_id, refused.worker_id, refused.outcome) == (  # type: ignore[attr-defined]
        result.id, "w2", "refused",
    )  # fmt: skip
    assert refused.task_path == "tests.tasks.noop"  # type: ignore[attr-defined]
