"""``TASKS_FS_IAP`` parsing and its system checks (E020 to E025, W020)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import checks
from django.test import override_settings

from django_tasks_fs.iap.checks import check_iap, check_iap_deploy
from django_tasks_fs.iap.config import PERMISSIONS, parse

AUDIENCE = "/projects/123/locations/europe-west1/services/web"
IAP_MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django_tasks_fs.iap.IAPAuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]


def ids(messages: list[checks.CheckMessage]) -> list[str]:
    return [m.id or "" for m in messages]


def test_grants_parse_by_principal_kind() -> None:
    config = parse(
        {
            "AUDIENCE": [
                AUDIENCE,
                "/projects/1/global/backendServices/22",
                "/projects/1/apps/my-app",
            ],
            "GRANTS": {
                "Alice@Example.com": ["all"],
                "user:bob@example.com": ["view"],
                "domain:Example.org": ["cancel", "retry"],
                "group:ops@example.com": ["schedules"],
                "*": ["view"],
            },
        }
    )
    assert config.problems == ()
    assert config.grants.users == {
        "alice@example.com": PERMISSIONS["all"],
        "bob@example.com": PERMISSIONS["view"],
    }
    assert config.grants.domains["example.org"] == PERMISSIONS["cancel"] | PERMISSIONS["retry"]
    assert "django_tasks_fs.change_scheduledtask" in config.grants.groups["ops@example.com"]
    assert config.grants.everyone == PERMISSIONS["view"]
    assert config.uses_google_keys


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"GRANTS": {}}, "AUDIENCE is required"),
        ({"AUDIENCE": "my-service"}, "is not an IAP audience"),
        ({"AUDIENCE": AUDIENCE, "GRANTS": {"a@b.c": ["admin"]}}, "unknown permission 'admin'"),
        ({"AUDIENCE": AUDIENCE, "GRANTS": {"a@b.c": "view"}}, "must be a list"),
        ({"AUDIENCE": AUDIENCE, "GRANTS": {"team:x": ["view"]}}, "is not 'EMAIL'"),
        ({"AUDIENCE": AUDIENCE, "GRANTS": {"domain:not a domain": ["view"]}}, "is not 'EMAIL'"),
        ({"AUDIENCE": AUDIENCE, "CERTS_URL": "ftp://x"}, "CERTS_URL must be an http(s) URL"),
        ({"AUDIENCE": AUDIENCE, "AUDIENCES": []}, "unknown key 'AUDIENCES'"),
        ("yes", "must be a dict"),
    ],
)
def test_bad_settings_are_named(raw: Any, expected: str) -> None:
    problems = parse(raw).problems
    assert any(expected in p for p in problems), problems


def test_valid_setup_passes_the_checks() -> None:
    with override_settings(
        MIDDLEWARE=IAP_MIDDLEWARE,
        TASKS_FS_IAP={"AUDIENCE": AUDIENCE, "GRANTS": {"a@example.com": ["all"]}},
    ):
        assert check_iap() == []
        assert check_iap_deploy() == []


def test_each_misconfiguration_has_its_check() -> None:
    with override_settings(MIDDLEWARE=IAP_MIDDLEWARE):
        assert ids(check_iap()) == ["django_tasks_fs.E020"]  # middleware, no setting
    with override_settings(MIDDLEWARE=IAP_MIDDLEWARE, TASKS_FS_IAP={"AUDIENCE": "x"}):
        assert "django_tasks_fs.E021" in ids(check_iap())
    with override_settings(TASKS_FS_IAP={"AUDIENCE": AUDIENCE, "GRANTS": {"a@b.co": ["view"]}}):
        assert ids(check_iap()) == ["django_tasks_fs.E022"]  # setting, no middleware
    with override_settings(MIDDLEWARE=IAP_MIDDLEWARE, TASKS_FS_IAP={"AUDIENCE": AUDIENCE}):
        assert ids(check_iap()) == ["django_tasks_fs.W020"]  # grants nothing


def test_the_stock_admin_site_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.contrib import admin
    from django.contrib.admin.sites import AdminSite

    monkeypatch.setattr(admin.site, "_wrapped", AdminSite())
    with override_settings(
        MIDDLEWARE=IAP_MIDDLEWARE,
        TASKS_FS_IAP={"AUDIENCE": AUDIENCE, "GRANTS": {"a@b.co": ["view"]}},
    ):
        messages = check_iap()
    assert ids(messages) == ["django_tasks_fs.E023"]
    assert "django_tasks_fs.admin_site.FirestoreAdminConfig" in (messages[0].hint or "")


def test_missing_cryptography_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "cryptography" else real(name, *a),
    )
    with override_settings(
        MIDDLEWARE=IAP_MIDDLEWARE,
        TASKS_FS_IAP={"AUDIENCE": AUDIENCE, "GRANTS": {"a@b.co": ["view"]}},
    ):
        messages = check_iap()
    assert ids(messages) == ["django_tasks_fs.E024"]
    assert "django-tasks-fs[iap]" in (messages[0].hint or "")


def test_the_local_stand_in_keys_are_refused_for_deployment() -> None:
    with override_settings(
        TASKS_FS_IAP={"AUDIENCE": AUDIENCE, "CERTS_URL": "http://127.0.0.1:8080/_iap/public_key"}
    ):
        messages = check_iap_deploy()
    assert ids(messages) == ["django_tasks_fs.E025"]
    assert "127.0.0.1:8080" in messages[0].msg
