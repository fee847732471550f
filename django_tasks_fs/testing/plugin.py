"""pytest plugin: ``firestore_emulator``, ``tasks_firestore`` and ``task_runner`` fixtures.

Loaded automatically (entry point ``pytest11``) when django-tasks-fs is installed;
the fixtures do nothing until a test asks for them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from .emulator import EmulatorNotFound, FirestoreEmulator


@pytest.fixture(scope="session")
def firestore_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """FIRESTORE_EMULATOR_HOST of a running official emulator (started unless already set)."""
    existing = os.environ.get("FIRESTORE_EMULATOR_HOST")
    if existing:
        yield existing
        return
    try:
        emulator = FirestoreEmulator(
            log_path=tmp_path_factory.mktemp("firestore") / "emulator.log"
        ).start()
    except EmulatorNotFound as exc:
        pytest.fail(str(exc), pytrace=False)
    os.environ["FIRESTORE_EMULATOR_HOST"] = emulator.host
    try:
        yield emulator.host
    finally:
        os.environ.pop("FIRESTORE_EMULATOR_HOST", None)
        emulator.stop()


@pytest.fixture
def tasks_firestore(firestore_emulator: str) -> Iterator[str]:
    """Point every django_tasks_fs backend at a fresh, empty Firestore project for this test."""
    from django.conf import settings
    from django.test import override_settings

    project = f"test-{uuid.uuid4().hex[:12]}"
    tasks: dict[str, Any] = {}
    for alias, params in settings.TASKS.items():
        params = dict(params)
        if str(params.get("BACKEND", "")).startswith("django_tasks_fs."):
            params["OPTIONS"] = {**params.get("OPTIONS", {}), "firestore_project": project}
        tasks[alias] = params
    with override_settings(TASKS=tasks):
        yield project


@pytest.fixture
def task_runner(tasks_firestore: str) -> Any:
    """Run enqueued tasks synchronously: ``task_runner.run_all()``, ``task_runner.run(result)``."""
    from .runner import TaskRunner

    return TaskRunner()
