"""Run every contract test on both document stores: the emulator and memory.

``store_settings`` (which the ``executions``, ``schedules`` and ``make_execution``
fixtures of tests/conftest.py build on) is parametrized, so each test runs twice: on
the official Firestore emulator (the reference) and on the in-memory store.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from django_tasks_fs.store import StoreSettings
from django_tasks_fs.store.ops import DocumentOps, document_ops, reset_memory

STORES = ("firestore", "memory")


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def store_settings(store_kind: str, request: pytest.FixtureRequest) -> Iterator[StoreSettings]:
    """A fresh, empty database of the store under test."""
    if store_kind == "firestore":
        project = request.getfixturevalue("project_id")  # the emulator; wiped afterwards
        yield StoreSettings(project=project, collection_prefix="t_")
        return
    yield StoreSettings(
        project=f"test-{uuid.uuid4().hex[:12]}", collection_prefix="t_", store="memory"
    )
    reset_memory()


@pytest.fixture
def ops(store_settings: StoreSettings) -> DocumentOps:
    return document_ops(store_settings)
