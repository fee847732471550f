"""``manage.py check --deploy`` refuses the settings of the local loop (no network)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import checks
from django.core.checks.registry import registry
from django.test import override_settings

from django_tasks_fs import deploy_checks

PRODUCTION = {
    "project_id": "my-project",
    "location": "europe-west1",
    "base_url": "https://app.example.com/tasks/",
    "oidc_service_account": "tasks-invoker@my-project.iam.gserviceaccount.com",
}


def tasks(**options: Any) -> dict[str, Any]:
    return {
        "default": {
            "BACKEND": "django_tasks_fs.backends.CloudTasksBackend",
            "OPTIONS": {**PRODUCTION, **options},
        }
    }


def deploy_messages() -> list[checks.CheckMessage]:
    """The library's deployment-only messages (the Google Cloud look-ups left out)."""
    return [
        *deploy_checks.check_emulators(),
        *deploy_checks.check_token_certificates(),
        *deploy_checks.check_public_urls(),
        *deploy_checks.check_endpoints_mounted(),
    ]


@pytest.fixture(autouse=True)
def production_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIRESTORE_EMULATOR_HOST", raising=False)
    monkeypatch.delenv("DJANGO_TASKS_FS_EMULATOR_HOST", raising=False)


def test_a_production_configuration_passes() -> None:
    with override_settings(TASKS=tasks()):
        assert deploy_messages() == []


def test_the_checks_run_only_under_deploy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:8086")
    with override_settings(TASKS=tasks(base_url="http://localhost/tasks/")):
        everyday = {m.id for m in checks.run_checks(tags=["django_tasks_fs"])}
    assert not everyday & {"django_tasks_fs.E009", "django_tasks_fs.E013"}


def test_firestore_emulator_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:8086")
    with override_settings(TASKS=tasks()):
        (message,) = deploy_messages()
    assert message.id == "django_tasks_fs.E009"
    assert message.msg == (
        "FIRESTORE_EMULATOR_HOST is set ('127.0.0.1:8086'): backends 'default' would use a "
        "local emulator instead of Firestore."
    )
    assert message.hint == (
        "Unset FIRESTORE_EMULATOR_HOST in the production environment; it is for local "
        "development and tests only."
    )


def test_firestore_emulator_variable_without_backends_is_not_ours(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:8086")
    with override_settings(
        TASKS={"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
    ):
        assert deploy_messages() == []


def test_google_cloud_emulator_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DJANGO_TASKS_FS_EMULATOR_HOST", "127.0.0.1:8123")
    with override_settings(TASKS=tasks()):
        (message,) = deploy_messages()
    assert message.id == "django_tasks_fs.E010"
    assert message.msg == (
        "DJANGO_TASKS_FS_EMULATOR_HOST is set ('127.0.0.1:8123'): backends 'default' would "
        "use a local emulator instead of Cloud Tasks, Cloud Run Jobs and Cloud Scheduler."
    )


def test_emulator_host_option() -> None:
    with override_settings(TASKS=tasks(emulator_host="127.0.0.1:8123")):
        (message,) = deploy_messages()
    assert message.id == "django_tasks_fs.E011"
    assert message.obj == "TASKS['default']"
    assert message.msg.startswith(
        "TASKS['default']['OPTIONS']['emulator_host'] is '127.0.0.1:8123': "
    )
    assert message.hint is not None
    assert message.hint.startswith("Remove 'emulator_host' from the production settings")


def test_certificates_that_are_not_googles() -> None:
    with override_settings(TASKS=tasks(oidc_certs_url="http://127.0.0.1:8123/certs")):
        (message,) = deploy_messages()
    assert message.id == "django_tasks_fs.E012"
    assert message.msg == (
        "TASKS['default']['OPTIONS']['oidc_certs_url'] is 'http://127.0.0.1:8123/certs': the "
        "task endpoints would accept tokens signed by whoever holds those keys."
    )
    assert message.hint == (
        "Remove 'oidc_certs_url' from the production settings; the default "
        "(https://www.googleapis.com/oauth2/v1/certs) verifies the tokens Google signs."
    )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://app.example.com/tasks/", "it is not HTTPS (the OIDC token would travel in clear)"),
        ("https://localhost/tasks/", "its host 'localhost' is not a public name"),
        ("https://web/tasks/", "its host 'web' is not a public name"),
        ("https://app.internal/tasks/", "its host 'app.internal' is not a public name"),
        ("https://127.0.0.1:8000/tasks/", "its host '127.0.0.1' is not a public address"),
        ("https://10.1.2.3/tasks/", "its host '10.1.2.3' is not a public address"),
        ("https://[::1]/tasks/", "its host '::1' is not a public address"),
    ],
)
def test_base_url_google_cloud_cannot_call(url: str, reason: str) -> None:
    with override_settings(TASKS=tasks(base_url=url)):
        (message,) = deploy_messages()
    assert message.id == "django_tasks_fs.E013"
    assert message.msg == (
        f"TASKS['default']['OPTIONS']['base_url'] is {url!r}: Cloud Tasks and Cloud Scheduler "
        f"cannot call it, {reason}."
    )
    assert message.hint == (
        "Set it to the public https:// URL where django_tasks_fs.urls is mounted, "
        "e.g. 'https://app.example.com/tasks/'."
    )


@pytest.mark.parametrize(
    "url", ["https://app.example.com/tasks/", "https://8.8.8.8/tasks/", "https://x.a.run.app/t/"]
)
def test_public_https_urls_pass(url: str) -> None:
    assert deploy_checks.unreachable_reason(url) is None


def test_explicit_endpoint_urls_are_checked_too() -> None:
    with override_settings(
        TASKS=tasks(
            execute_url="http://app.example.com/tasks/execute/",
            schedule_url="https://app.example.com/tasks/schedule/",
        )
    ):
        messages = deploy_messages()
    assert [(m.id, m.msg.split(" is ")[0]) for m in messages] == [
        ("django_tasks_fs.E013", "TASKS['default']['OPTIONS']['execute_url']")
    ]


def test_the_endpoints_are_not_mounted() -> None:
    with override_settings(TASKS=tasks(), ROOT_URLCONF=__name__):
        (message,) = deploy_messages()
    assert message.id == "django_tasks_fs.E014"
    assert message.msg == (
        "The URLconf does not include django_tasks_fs.urls: Cloud Tasks and Cloud Scheduler "
        "would get 404 for backends 'default'."
    )
    assert message.hint == (
        'Add path("tasks/", include("django_tasks_fs.urls")) to ROOT_URLCONF and point '
        "base_url at it."
    )


urlpatterns: list[Any] = []  # ROOT_URLCONF for the test above: nothing mounted


def test_the_endpoints_are_mounted_elsewhere() -> None:
    with override_settings(TASKS=tasks(base_url="https://app.example.com/jobs/")):
        messages = deploy_messages()
    assert [m.id for m in messages] == ["django_tasks_fs.W002", "django_tasks_fs.W002"]
    assert messages[0].msg == (
        "Backend 'default' posts to 'https://app.example.com/jobs/execute/', but "
        "django_tasks_fs.urls serves that endpoint at '/tasks/execute/'."
    )
    assert messages[0].obj == "TASKS['default']"


def test_no_google_cloud_backend_needs_no_endpoints() -> None:
    with override_settings(
        TASKS={"default": {"BACKEND": "django_tasks_fs.backends.ProcessBackend"}},
        ROOT_URLCONF=__name__,
    ):
        assert deploy_messages() == []


def test_each_check_id_is_registered_for_deploy_only() -> None:
    registered = registry.get_checks(include_deployment_checks=True)
    everyday = registry.get_checks(include_deployment_checks=False)
    ours = {
        deploy_checks.check_emulators,
        deploy_checks.check_token_certificates,
        deploy_checks.check_public_urls,
        deploy_checks.check_endpoints_mounted,
    }
    assert ours <= set(registered)
    assert not ours & set(everyday)
