"""Security review fixtures: the endpoint and admin fixtures reused, a second caller
(another audience, service account and signing key), and Firestore snapshots."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from django.tasks import task_backends

from django_tasks_fs.emulators.gcloud.oidc import TokenIssuer
from django_tasks_fs.store import ExecutionStore, ScheduleStore, TaskExecution
from django_tasks_fs.store.ops.memory import MemoryOps
from tests import tokens
from tests.admin.conftest import add_execution, make_user  # noqa: F401 (fixtures)
from tests.integration.test_endpoints import cloud  # noqa: F401 (fixture)
from tests.security import canary

#: Another Cloud Tasks backend: its own audience, service account and signing key.
OTHER_AUDIENCE = "https://b.example"
OTHER_ACCOUNT = "b-invoker@tests.iam.gserviceaccount.com"


def snapshot(backend: Any) -> dict[str, Any]:
    """Every document of the test's project (all backends share it), in Firestore or in
    memory: path -> update time. Equal snapshots: nothing was created, changed or deleted."""
    documents = backend.executions.documents
    if isinstance(documents, MemoryOps):
        return dict(documents.database.update_times())
    client = backend.executions.client
    return {
        f"{collection.id}/{document.id}": document.update_time
        for collection in client.collections()
        for document in collection.stream()
    }


def _touched(store: Any) -> Any:
    raise AssertionError("Firestore was touched")


@contextmanager
def firestore_forbidden() -> Iterator[None]:
    """Any Firestore access in the block raises (and the test client re-raises it)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ExecutionStore, "documents", property(_touched))
        patch.setattr(ScheduleStore, "documents", property(_touched))
        yield


def forbid_dispatch(backend: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if ``backend`` sends anything to Google Cloud."""

    def send(execution: TaskExecution, **_: Any) -> Any:
        raise AssertionError(f"{backend.alias} dispatched {execution.id}")

    monkeypatch.setattr(backend, "send", send)


@pytest.fixture(scope="module")
def other_issuer() -> TokenIssuer:
    return TokenIssuer()


@pytest.fixture(scope="module")
def other_certs(other_issuer: TokenIssuer) -> Iterator[tokens.CertsServer]:
    server = tokens.CertsServer(other_issuer)
    yield server
    server.close()


@dataclass
class Callers:
    a: Any  #: "cloud": audience http://testserver, tokens.SERVICE_ACCOUNT, ``issuer``'s key
    b: Any  #: "cloud_b": OTHER_AUDIENCE, OTHER_ACCOUNT, ``other_issuer``'s key


@pytest.fixture
def callers(
    request: pytest.FixtureRequest,
    settings: Any,
    other_certs: tokens.CertsServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Callers:
    """``cloud`` plus a second Cloud Tasks backend of another caller; neither may dispatch."""
    request.getfixturevalue("cloud")  # its TASKS, extended below
    options = {
        **settings.TASKS["cloud"]["OPTIONS"],
        "collection_prefix": "b_",
        "oidc_audience": OTHER_AUDIENCE,
        "oidc_service_account": OTHER_ACCOUNT,
        "oidc_certs_url": other_certs.url,
    }
    settings.TASKS = {
        **settings.TASKS,
        "cloud_b": {"BACKEND": settings.TASKS["cloud"]["BACKEND"], "OPTIONS": options},
    }
    found = Callers(a=task_backends["cloud"], b=task_backends["cloud_b"])
    for backend in (found.a, found.b):
        forbid_dispatch(backend, monkeypatch)
    return found


@pytest.fixture
def canaries() -> Iterator[list[str]]:
    """The import canary not yet imported; yields the list of canary imports."""

    def forget() -> None:
        canary.IMPORTS.clear()
        sys.modules.pop("tests.security.import_canary", None)
        package = sys.modules["tests.security"]
        if hasattr(package, "import_canary"):
            delattr(package, "import_canary")

    forget()
    yield canary.IMPORTS
    forget()
