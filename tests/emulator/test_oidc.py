"""The emulator's ID tokens verify against its certs URL with google-auth."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from google.auth import exceptions as auth_exceptions
from google.auth.transport.requests import Request
from google.oauth2 import id_token

from django_tasks_fs.emulators.gcloud import GoogleCloudEmulator

EMAIL = "tasks@demo-project.iam.gserviceaccount.com"
AUDIENCE = "https://app.example.com/tasks/"


@pytest.fixture
def http_request() -> Iterator[Any]:
    session = requests.Session()
    yield Request(session=session)
    session.close()


def mint(gcloud: GoogleCloudEmulator, audience: str = AUDIENCE) -> str:
    assert gcloud.issuer is not None
    return gcloud.issuer.id_token(email=EMAIL, audience=audience)


def test_token_verifies_against_certs_url(gcloud: GoogleCloudEmulator, http_request: Any) -> None:
    claims = id_token.verify_token(
        mint(gcloud), http_request, audience=AUDIENCE, certs_url=gcloud.certs_url
    )

    assert claims["iss"] == "https://accounts.google.com"
    assert claims["aud"] == AUDIENCE
    assert claims["email"] == EMAIL
    assert claims["email_verified"] is True
    assert claims["sub"] == claims["azp"]
    assert claims["sub"].isdigit()
    assert claims["exp"] - claims["iat"] == 3600


def test_wrong_audience_is_refused(gcloud: GoogleCloudEmulator, http_request: Any) -> None:
    with pytest.raises(ValueError, match="Token has wrong audience"):
        id_token.verify_token(
            mint(gcloud, "https://other.example.com/"),
            http_request,
            audience=AUDIENCE,
            certs_url=gcloud.certs_url,
        )


def test_token_from_another_key_is_refused(gcloud: GoogleCloudEmulator, http_request: Any) -> None:
    with GoogleCloudEmulator() as other:
        assert other.issuer is not None
        foreign = other.issuer.id_token(email=EMAIL, audience=AUDIENCE)

    with pytest.raises((ValueError, auth_exceptions.GoogleAuthError)):
        id_token.verify_token(foreign, http_request, audience=AUDIENCE, certs_url=gcloud.certs_url)


def test_certs_document_has_googles_shape(gcloud: GoogleCloudEmulator) -> None:
    with requests.get(gcloud.certs_url, timeout=5) as response:
        certs = response.json()
        cache_control = response.headers["Cache-Control"]

    assert gcloud.issuer is not None
    assert list(certs) == [gcloud.issuer.key_id]
    assert certs[gcloud.issuer.key_id].startswith("-----BEGIN CERTIFICATE-----")
    assert "max-age=" in cache_control


def test_token_endpoint_mints_verifiable_tokens(
    gcloud: GoogleCloudEmulator, http_request: Any
) -> None:
    params = {"email": EMAIL, "audience": AUDIENCE}
    with requests.get(f"{gcloud.http_url}/emulator/v1/token", params=params, timeout=5) as r:
        token = r.json()["id_token"]

    claims = id_token.verify_token(
        token, http_request, audience=AUDIENCE, certs_url=gcloud.certs_url
    )
    assert claims["email"] == EMAIL
