"""django_tasks_fs.registry: the one lookup of backends by alias (no Firestore needed)."""

from __future__ import annotations

from typing import Any

import pytest
from django.tasks.exceptions import InvalidTaskBackend
from django.test import override_settings

from django_tasks_fs.backends.google_cloud import GoogleCloudBackend
from django_tasks_fs.backends.process import ProcessBackend
from django_tasks_fs.exceptions import TaskFsError, UnknownBackend
from django_tasks_fs.registry import firestore_backends, get_backend, select_backends
from tests.settings import TASKS

WITH_DUMMY: dict[str, Any] = {
    **TASKS,
    "dummy": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"},
}


def test_firestore_backends_by_alias_in_tasks_order() -> None:
    assert list(firestore_backends()) == ["default", "jobs", "cloud", "cloudjobs", "once"]
    assert list(firestore_backends(GoogleCloudBackend)) == ["cloud", "cloudjobs"]


@override_settings(TASKS=WITH_DUMMY)
def test_other_libraries_backends_are_left_out() -> None:
    assert "dummy" not in firestore_backends()


def test_get_backend_of_a_kind() -> None:
    backend = get_backend("jobs", ProcessBackend)
    assert isinstance(backend, ProcessBackend)
    assert backend.alias == "jobs"


def test_an_unknown_alias_names_it_and_the_configured_ones() -> None:
    with pytest.raises(UnknownBackend) as info:
        get_backend("nope")
    assert str(info.value) == (
        "Task backend 'nope' is not in TASKS (django_tasks_fs backends: "
        "'default', 'jobs', 'cloud', 'cloudjobs', 'once')."
    )
    # Django's own error for a bad alias, and ours.
    assert isinstance(info.value, InvalidTaskBackend)
    assert isinstance(info.value, TaskFsError)


@override_settings(TASKS=WITH_DUMMY)
def test_a_backend_of_another_kind_is_named_with_its_class() -> None:
    with pytest.raises(UnknownBackend, match=r"'dummy' is a DummyBackend, not a django_tasks_fs"):
        get_backend("dummy")
    with pytest.raises(
        UnknownBackend,
        match=r"'default' is a ProcessBackend, not a GoogleCloudBackend backend "
        r"\(GoogleCloudBackend backends: 'cloud', 'cloudjobs'\)",
    ):
        get_backend("default", GoogleCloudBackend)


def test_select_backends_all_or_the_named_in_order() -> None:
    assert [b.alias for b in select_backends()] == [
        "default",
        "jobs",
        "cloud",
        "cloudjobs",
        "once",
    ]
    assert [b.alias for b in select_backends(["once", "default", "once"])] == ["once", "default"]
    assert [b.alias for b in select_backends([], ProcessBackend)] == ["default", "jobs", "once"]


def test_select_backends_names_every_unknown_alias() -> None:
    with pytest.raises(UnknownBackend) as info:
        select_backends(["cloud", "nope", "default"], GoogleCloudBackend)
    assert str(info.value) == (
        "Not GoogleCloudBackend aliases: nope, default "
        "(GoogleCloudBackend aliases: 'cloud', 'cloudjobs')."
    )


@override_settings(TASKS={"dummy": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}})
def test_no_backend_of_ours_is_an_empty_selection_not_an_error() -> None:
    assert select_backends() == []
    with pytest.raises(UnknownBackend, match=r"\(django_tasks_fs aliases: none\)"):
        select_backends(["dummy"])
