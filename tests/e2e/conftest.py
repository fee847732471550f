"""End-to-end fixtures: the Django app on a real HTTP server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from django_tasks_fs.emulators.gcloud.oidc import TokenIssuer
from tests import tokens
from tests.live_server import LiveServer


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
