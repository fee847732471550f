"""OPTIONS parsing and the system checks that report problems."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_tasks_fs.backends import ProcessBackend
from django_tasks_fs.option_spec import default_of, spec_of
from django_tasks_fs.options import BackendOptions, CloudOptions, Kind, names_for, parse_options


def backend(**options: Any) -> ProcessBackend:
    return ProcessBackend("default", {"OPTIONS": options})


def ids(backend: ProcessBackend) -> list[str]:
    return [m.id for m in backend.check() if m.id]


def test_defaults() -> None:
    options, problems = parse_options("default", {})
    assert problems == []
    assert options == BackendOptions()
    assert options.max_attempts == 1
    assert options.max_workers == 4
    assert options.effective_batch_size == 4
    assert options.database == "(default)"


def test_a_valid_configuration_passes_the_checks() -> None:
    assert (
        backend(
            database="tasks", collection_prefix="app_", max_attempts=None, mode="cloud_run_jobs"
        ).check()
        == []
    )


def test_unknown_option_suggests_the_right_name() -> None:
    (message,) = backend(max_attempt=3).check()
    assert message.id == "django_tasks_fs.E001"
    assert "unknown option 'max_attempt'" in message.msg
    assert message.hint == "Did you mean 'max_attempts'?"


def test_cloud_options_are_unknown_to_process_backend() -> None:
    (message,) = backend(base_url="https://x").check()
    assert message.id == "django_tasks_fs.E001"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("mode", "lambda"),
        ("max_attempts", 0),
        ("max_attempts", "3"),
        ("max_workers", True),
        ("poll_interval_seconds", -1),
        ("database", ""),
        ("collection_prefix", "a/b"),
        ("heartbeat_enabled", "yes"),
        ("success_retention_days", 0),
    ],
)
def test_invalid_values_are_reported_with_the_value_and_a_hint(key: str, value: Any) -> None:
    (message,) = backend(**{key: value}).check()
    assert message.id == "django_tasks_fs.E002"
    assert f"['OPTIONS'][{key!r}] is {value!r}; expected" in message.msg
    assert key in (message.hint or "")
    assert isinstance(message, checks.Error)


def test_heartbeat_interval_must_be_shorter_than_the_lease() -> None:
    (message,) = backend(heartbeat_interval_seconds=30, heartbeat_timeout_seconds=10).check()
    assert message.id == "django_tasks_fs.E003"


def test_using_a_misconfigured_backend_raises() -> None:
    bad = backend(mode="lambda", max_attempt=2)
    with pytest.raises(ImproperlyConfigured, match=r"(?s)misconfigured.*'mode'.*max_attempt"):
        _ = bad.executions


def test_options_must_be_a_dict() -> None:
    messages = ProcessBackend("default", {"OPTIONS": ["x"]}).check()
    assert [m.id for m in messages] == ["django_tasks_fs.E001"]


def test_app_must_be_installed() -> None:
    with override_settings(INSTALLED_APPS=["django.contrib.contenttypes"]):
        assert ids(backend()) == ["django_tasks_fs.E004"]


def test_at_most_30_queues() -> None:
    many = ProcessBackend("default", {"QUEUES": [f"q{i}" for i in range(31)]})
    assert ids(many) == ["django_tasks_fs.E005"]


def test_checks_run_through_django(settings: Any) -> None:
    settings.TASKS = {
        "default": {"BACKEND": "django_tasks_fs.backends.ProcessBackend", "OPTIONS": {"mode": "x"}}
    }
    errors = [m for m in checks.run_checks() if m.id and m.id.startswith("django_tasks_fs")]
    assert [m.id for m in errors] == ["django_tasks_fs.E002"]


@pytest.mark.parametrize(
    ("mode", "defer", "force", "priority"),
    [("cloud_tasks", True, False, True), ("cloud_run_jobs", False, True, True)],
)
def test_supports_flags_follow_the_mode(
    mode: str, defer: bool, force: bool, priority: bool
) -> None:
    b = backend(mode=mode)
    assert b.supports_defer is defer
    assert b.supports_force_cancel is force
    assert b.supports_priority is priority
    assert b.supports_get_result is True
    assert b.supports_async_task is True


def test_firestore_timeout_reaches_the_store() -> None:
    assert backend().config.store_settings().timeout == 10.0
    assert backend(firestore_timeout_seconds=2.5).config.store_settings().timeout == 2.5
    assert ids(backend(firestore_timeout_seconds=0)) == ["django_tasks_fs.E002"]


def test_each_backend_accepts_the_options_declared_for_its_kind() -> None:
    local, cloud = names_for(Kind.LOCAL), names_for(Kind.CLOUD)
    assert {"mode", "max_workers", "batch_size"} <= local - cloud
    assert {"base_url", "command", "max_request_bytes"} <= cloud - local
    assert {"database", "heartbeat_timeout_seconds", "max_history_entries"} <= local & cloud
    # Per-task policy: OPTIONS may set what the platform would otherwise decide.
    assert {"max_attempts", "retry_backoff_seconds", "retry_backoff_max_seconds"} <= local & cloud
    assert local | cloud == {f.name for f in fields(BackendOptions)}


def test_every_option_is_declared_with_a_spec() -> None:
    for declared in fields(BackendOptions):
        spec = spec_of(declared)
        assert spec.doc, declared.name
        assert spec.check.expected, declared.name
        assert spec.check(default_of(declared)), f"{declared.name}: its default is invalid"


def test_mutable_defaults_are_not_shared() -> None:
    one, two = BackendOptions(), BackendOptions()
    assert one.command == ["python", "manage.py", "execute_task"]
    assert one.command is not two.command
    assert one.queue_aliases is not two.queue_aliases


def test_max_history_entries_default_reaches_the_store() -> None:
    assert backend().config.store_settings().max_history_entries == 100


def test_cloud_options_are_typed_once_validated() -> None:
    good = {
        "project_id": "p",
        "location": "l",
        "base_url": "https://x/",
        "oidc_service_account": "a@b",
    }
    options, problems = parse_options("c", good, kind=Kind.CLOUD)
    cloud, missing = CloudOptions.require("c", options, backend="CloudTasksBackend")
    assert problems == missing == []
    assert cloud == CloudOptions(
        project_id="p", location="l", base_url="https://x/", oidc_service_account="a@b"
    )
    # An invalid value is reported once (E002) and then counts as missing (E006).
    options, problems = parse_options("c", {**good, "base_url": "x"}, kind=Kind.CLOUD)
    cloud, missing = CloudOptions.require("c", options, backend="CloudTasksBackend")
    assert cloud is None
    assert [p.id for p in problems + missing] == ["django_tasks_fs.E002", "django_tasks_fs.E006"]


def test_run_tasks_refuses_a_backend_its_checks_refuse(settings: Any) -> None:
    """run_tasks runs only this library's tagged checks, so it checks the backends it
    serves itself (E005 is no option problem: ensure_configured() lets it through)."""
    from django.core.management import CommandError, call_command

    settings.TASKS = {
        "default": {
            "BACKEND": "django_tasks_fs.backends.ProcessBackend",
            "QUEUES": [f"q{i}" for i in range(31)],
            "OPTIONS": {"project_id": "p", "store": "memory"},
        }
    }
    with pytest.raises(CommandError, match=r"django_tasks_fs\.E005"):
        call_command("run_tasks", "--burst")
