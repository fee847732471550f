"""pytest plugin: ``firestore_emulator``, ``tasks_firestore``, ``tasks_memory`` and
``task_runner`` fixtures, and the ``tasks_fs_store`` ini option.

Loaded automatically (entry point ``pytest11``) in every project that installs
django-tasks-fs, so importing it must not touch Django: the fixtures do nothing until
a test asks for them, and then say what is missing (pytest-django, settings) instead
of failing with Django's own error.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from ..emulators.errors import EmulatorError
from ..emulators.firestore import FirestoreEmulator

PYTEST_DJANGO = "pip install pytest-django"
SETTINGS_EXAMPLE = (
    "  [tool.pytest.ini_options]          # pyproject.toml (or [pytest] in pytest.ini)\n"
    '  DJANGO_SETTINGS_MODULE = "mysite.settings"'
)


#: ini option choosing the store of ``task_runner``.
STORE_OPTION = "tasks_fs_store"
STORES = ("firestore", "memory")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        STORE_OPTION,
        "where task_runner keeps executions: 'firestore' (the official emulator, the "
        "default) or 'memory' (this process only, no Java)",
        default="firestore",
    )


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
    except EmulatorError as exc:
        pytest.fail(str(exc), pytrace=False)
    os.environ["FIRESTORE_EMULATOR_HOST"] = emulator.host
    try:
        yield emulator.host
    finally:
        os.environ.pop("FIRESTORE_EMULATOR_HOST", None)
        emulator.stop()


def django_problem(fixture: str, *, pytest_django: bool) -> str | None:
    """Why ``fixture`` cannot use the project's Django settings yet, or None."""
    from django.apps import apps
    from django.conf import settings

    plugin = (
        "pytest-django is active"
        if pytest_django
        else f"pytest-django is not installed or disabled ({PYTEST_DJANGO})"
    )
    if not settings.configured and not os.environ.get("DJANGO_SETTINGS_MODULE"):
        return (
            f"The {fixture!r} fixture needs your Django settings (TASKS), but none are "
            f"configured: DJANGO_SETTINGS_MODULE is not set, and {plugin}. Install "
            f"pytest-django and name your settings module in the pytest configuration:\n"
            f"{SETTINGS_EXAMPLE}"
        )
    if not apps.ready:
        return (
            f"The {fixture!r} fixture needs Django set up (django.setup()), which "
            f"pytest-django does before it collects tests, but {plugin}. Install it, or "
            "call django.setup() in your conftest.py."
        )
    backends = {
        alias: params.get("BACKEND")
        for alias, params in settings.TASKS.items()
        if str(params.get("BACKEND", "")).startswith("django_tasks_fs.")
    }
    if not backends:
        return (
            f"The {fixture!r} fixture found no django_tasks_fs backend in TASKS "
            f"(backends: {sorted(settings.TASKS)!r}); add one, e.g. "
            "'BACKEND': 'django_tasks_fs.backends.ProcessBackend'."
        )
    return None


@pytest.fixture
def _tasks_fs_django(request: pytest.FixtureRequest) -> None:
    """Fail the test, before any emulator starts, when Django is not ready for the fixtures."""
    used = [
        f for f in ("task_runner", "tasks_firestore", "tasks_memory") if f in request.fixturenames
    ]
    problem = django_problem(
        used[0] if used else "tasks_firestore",
        pytest_django=request.config.pluginmanager.hasplugin("django"),
    )
    if problem is not None:
        pytest.fail(problem, pytrace=False)


def _fresh_project(**options: Any) -> Any:
    """Override TASKS: every django_tasks_fs backend on a new, empty project (plus ``options``)."""
    from django.conf import settings
    from django.test import override_settings

    project = f"test-{uuid.uuid4().hex[:12]}"
    tasks: dict[str, Any] = {}
    for alias, params in settings.TASKS.items():
        params = dict(params)
        if str(params.get("BACKEND", "")).startswith("django_tasks_fs."):
            params["OPTIONS"] = {
                **params.get("OPTIONS", {}),
                "firestore_project": project,
                **options,
            }
        tasks[alias] = params
    return project, override_settings(TASKS=tasks)


@pytest.fixture
def tasks_firestore(_tasks_fs_django: None, firestore_emulator: str) -> Iterator[str]:
    """Point every django_tasks_fs backend at a fresh, empty Firestore project for this test."""
    project, override = _fresh_project()
    with override:
        yield project


@pytest.fixture
def tasks_memory(_tasks_fs_django: None) -> Iterator[str]:
    """Every django_tasks_fs backend on a fresh project of this process's in-memory store:
    no Java, no emulator; nothing outside this process (a worker, a subprocess) sees it."""
    from ..store.ops import reset_memory

    project, override = _fresh_project(store="memory")
    try:
        with override:
            yield project
    finally:
        reset_memory()


@pytest.fixture
def task_runner(request: pytest.FixtureRequest) -> Any:
    """Run enqueued tasks synchronously: ``task_runner.run_all()``, ``task_runner.run(result)``;
    on the store named by the ``tasks_fs_store`` ini option (``tasks_firestore`` or
    ``tasks_memory``)."""
    from .runner import TaskRunner

    store = str(request.config.getini(STORE_OPTION)).strip() or "firestore"
    if store not in STORES:
        pytest.fail(
            f"{STORE_OPTION} = {store!r} in the pytest configuration: use one of {STORES}.",
            pytrace=False,
        )
    request.getfixturevalue(f"tasks_{store}")
    return TaskRunner()
