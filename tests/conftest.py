"""Session-wide official Firestore emulator, and per-test isolated stores.

Every test gets its own Google project id in the emulator, so tests never see each
other's documents; the project's data is deleted through the emulator's REST reset
endpoint afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import hypothesis
import pytest

from django_tasks_fs.emulators.firestore import EmulatorNotFound, FirestoreEmulator
from django_tasks_fs.store import (
    ExecutionStore,
    ScheduleStore,
    StoreSettings,
    TaskExecution,
    new_execution_id,
)
from django_tasks_fs.store.ops import OpCounts
from django_tasks_fs.store.ops.counting import disable_counting, enable_counting
from tests.factories import REPO_ROOT, python_path

#: Infrastructure markers (skip with an install hint, fail under CI=true); pytester for
#: the tests of that behaviour.
pytest_plugins = ["tests.markers", "pytester"]

# Property tests have no per-example deadline: a loaded machine must not fail them.
hypothesis.settings.register_profile(
    "suite", deadline=None, suppress_health_check=[hypothesis.HealthCheck.too_slow]
)
hypothesis.settings.load_profile("suite")


def pytest_configure(config: pytest.Config) -> None:
    from tests import index_recorder

    index_recorder.install()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when a query the suite sent needs an undeclared composite index, or
    uses a field the index file exempts from indexing."""
    from tests import index_recorder

    missing = index_recorder.uncovered()
    if missing:
        print("\nQueries without a declared composite index (add them to store/indexes.py):")
        for shape in missing:
            print(f"  {shape}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    exempted = index_recorder.unindexed_uses()
    if exempted:
        print("\nQueries on fields exempted from indexing (store/indexes.py UNINDEXED_FIELDS):")
        for shape in exempted:
            print(f"  {shape}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def firestore_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirestoreEmulator]:
    """The official Firestore emulator on 127.0.0.1 and a free port, for the whole session."""
    log = tmp_path_factory.mktemp("firestore") / "emulator.log"
    try:
        emulator = FirestoreEmulator(log_path=log).start()
    except EmulatorNotFound as exc:
        pytest.fail(str(exc), pytrace=False)
    previous = os.environ.get("FIRESTORE_EMULATOR_HOST")
    os.environ["FIRESTORE_EMULATOR_HOST"] = emulator.host
    yield emulator
    emulator.stop()
    if previous is None:
        os.environ.pop("FIRESTORE_EMULATOR_HOST", None)
    else:
        os.environ["FIRESTORE_EMULATOR_HOST"] = previous


@pytest.fixture
def project_id(firestore_emulator: FirestoreEmulator) -> Iterator[str]:
    """A fresh Google project id in the emulator, wiped after the test."""
    project = f"test-{uuid.uuid4().hex[:12]}"
    yield project
    for database in ("(default)", "db-a", "db-b"):
        firestore_emulator.reset(project, database)


@pytest.fixture
def store_settings(project_id: str) -> StoreSettings:
    return StoreSettings(project=project_id, collection_prefix="t_")


@pytest.fixture
def executions(store_settings: StoreSettings) -> ExecutionStore:
    return ExecutionStore(store_settings)


@pytest.fixture
def schedules(store_settings: StoreSettings) -> ScheduleStore:
    return ScheduleStore(store_settings)


ExecutionFactory = Callable[..., TaskExecution]


@pytest.fixture
def make_execution(executions: ExecutionStore) -> ExecutionFactory:
    """Create an execution document (READY, due now) with ``overrides`` applied."""

    def make(**overrides: Any) -> TaskExecution:
        now = executions.clock.now()
        values: dict[str, Any] = {
            "id": new_execution_id(),
            "task_path": "tests.tasks.noop",
            "backend": "default",
            "queue_name": "default",
            "enqueued_at": now,
            "run_after": now - timedelta(seconds=1),
            "max_attempts": 3,
        }
        values.update(overrides)
        return executions.create(TaskExecution(**values))

    return make


def wait_until(predicate: Callable[[], bool], *, timeout: float = 10.0) -> None:
    """Poll ``predicate`` until it is true; fail the test at the deadline (no fixed sleeps)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    pytest.fail(f"condition not met within {timeout}s")


def within[T](seconds: float, call: Callable[[], T]) -> T:
    """``call()``, run in a thread; fail the test if it has not returned in ``seconds``
    (so a call that would hang for minutes fails in seconds). Its exception is raised."""
    import threading

    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"no answer within {seconds}s")
    if "error" in outcome:
        raise outcome["error"]
    value: T = outcome["value"]
    return value


def aware(dt: datetime) -> datetime:
    assert dt.tzinfo is not None
    return dt


#: Folders whose tests run the pipeline in other processes (workers, runserver,
#: execute_task, the user's project): they need Firestore itself, not process memory.
CROSS_PROCESS = ("acceptance", "e2e", "chaos", "packaging")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``tasks_project`` in a cross-process folder means the emulator: mark it so."""
    for item in items:
        folder = item.path.parent.name
        if folder in CROSS_PROCESS and "tasks_project" in getattr(item, "fixturenames", ()):
            item.add_marker("firestore")


@pytest.fixture(scope="session")
def issuer() -> Any:
    """The local Google Cloud emulator's OIDC token signer (tests sign tokens with it)."""
    from django_tasks_fs.emulators.gcloud.oidc import TokenIssuer

    return TokenIssuer()


@pytest.fixture(scope="session")
def certs(issuer: Any) -> Iterator[Any]:
    """The issuer's certificates served on 127.0.0.1, like Google's certs endpoint."""
    from tests import tokens

    server = tokens.CertsServer(issuer)
    yield server
    server.close()


@pytest.fixture
def memory_project() -> Iterator[str]:
    """A fresh project id in this process's in-memory store, forgotten after the test."""
    from django_tasks_fs.store.ops import reset_memory

    yield f"mem-{uuid.uuid4().hex[:12]}"
    reset_memory()


@pytest.fixture
def test_store(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(project, store) of this test: a fresh in-memory project (no Java), or a fresh
    emulator project for a test marked ``firestore`` (one about Firestore itself, one
    that cuts it, or one whose pipeline runs in other processes)."""
    if request.node.get_closest_marker("firestore") is not None:
        return request.getfixturevalue("project_id"), "firestore"
    return request.getfixturevalue("memory_project"), "memory"


@pytest.fixture
def tasks_project(test_store: tuple[str, str], settings: Any) -> str:
    """Point every TASKS backend at this test's project (see ``test_store``)."""
    from tests.settings import tasks_setting

    project, store = test_store
    settings.TASKS = tasks_setting(project, store=store)
    return project


@pytest.fixture
def backend(tasks_project: str) -> Any:
    """The cloud_tasks-mode ProcessBackend of this test's project."""
    from django.tasks import task_backends

    return task_backends["default"]


def subprocess_env(project: str, **extra: str) -> dict[str, str]:
    """Environment for a Django subprocess (worker, execute_task) on ``project``."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        TEST_FIRESTORE_PROJECT=project,
        PYTHONPATH=python_path(),
        **extra,
    )
    return env


def start_django(project: str, *args: str, **popen: Any) -> Any:
    """Start ``python -m django ARGS`` against ``project`` (returns the Popen)."""
    import subprocess
    import sys

    return subprocess.Popen(
        [sys.executable, "-m", "django", *args],
        env=subprocess_env(project),
        cwd=REPO_ROOT,
        **popen,
    )


@pytest.fixture
def proxy(firestore_emulator: FirestoreEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Every Firestore client of the test goes through an emulator.faultproxy.FaultProxy
    (new clients: they are cached per FIRESTORE_EMULATOR_HOST), to cut or slow it."""
    from emulator.faultproxy import FaultProxy

    with FaultProxy(firestore_emulator.host) as fault_proxy:
        monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", fault_proxy.host)
        yield fault_proxy


@pytest.fixture
def counts() -> Iterator[OpCounts]:
    """This process's Firestore operations (its stores', and a live server's), counted
    from here to the end of the test."""
    counted = enable_counting()
    counted.reset()
    try:
        yield counted
    finally:
        disable_counting()
        counted.reset()
