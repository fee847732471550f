"""End-to-end fixtures: the Django app on a real HTTP server on 127.0.0.1, the Google
Cloud emulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from django_tasks_fs.emulators.firestore import FirestoreEmulator
from django_tasks_fs.emulators.gcloud.oidc import TokenIssuer
from django_tasks_fs.emulators.gcloud.server import GoogleCloudEmulator
from tests import tokens
from tests.factories import REPO_ROOT
from tests.live_server import LiveServer


@pytest.fixture(scope="session")
def gcloud(firestore_emulator: FirestoreEmulator) -> Iterator[GoogleCloudEmulator]:
    """This project's Google Cloud emulator (Cloud Tasks, Run Jobs, Scheduler) on gRPC."""
    with GoogleCloudEmulator(cwd=REPO_ROOT, kill_grace=5) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def http_server() -> Iterator[LiveServer]:
    with LiveServer() as server:
        yield server


@pytest.fixture(scope="session")
def issuer() -> TokenIssuer:
    return TokenIssuer()


@pytest.fixture(scope="session")
def certs(issuer: TokenIssuer) -> Iterator[tokens.CertsServer]:
    server = tokens.CertsServer(issuer)
    yield server
    server.close()
