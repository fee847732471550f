"""The pytest plugin in a user's project: harmless where unused, and a clear message
naming what is missing (pytest-django, DJANGO_SETTINGS_MODULE) where a test uses it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.factories import python_path

USES_THE_RUNNER = """
def test_uses_the_runner(task_runner):
    pass


def test_plain():
    assert True
"""


@pytest.fixture
def user_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A project folder of its own (no settings of ours in the environment)."""
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    monkeypatch.delenv("FIRESTORE_EMULATOR_HOST", raising=False)
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_user=USES_THE_RUNNER)
    return pytester


def test_without_pytest_django_or_settings_the_fixture_says_what_to_install(
    user_project: pytest.Pytester,
) -> None:
    result = user_project.runpytest_subprocess("-p", "no:django", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)  # collection went fine; only the user fails
    out = result.stdout.str()
    assert "The 'task_runner' fixture needs your Django settings (TASKS)" in out
    assert "DJANGO_SETTINGS_MODULE is not set" in out
    assert "pytest-django is not installed or disabled (pip install pytest-django)" in out
    assert 'DJANGO_SETTINGS_MODULE = "mysite.settings"' in out
    assert "ImproperlyConfigured" not in out


def test_settings_without_pytest_django_say_django_is_not_set_up(
    user_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_project.makepyfile(
        mysettings="SECRET_KEY = 'x'\nINSTALLED_APPS = ['django_tasks_fs']\nTASKS = {}\n"
    )
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "mysettings")
    monkeypatch.setenv("PYTHONPATH", python_path(user_project.path))
    result = user_project.runpytest_subprocess("-p", "no:django", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    out = result.stdout.str()
    assert "The 'task_runner' fixture needs Django set up (django.setup())" in out
    assert "pip install pytest-django" in out
    assert "AppRegistryNotReady" not in out


def test_a_project_without_django_tasks_fs_backends_is_told_so(
    user_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_project.makepyfile(
        mysettings=(
            "SECRET_KEY = 'x'\nINSTALLED_APPS = ['django_tasks_fs']\n"
            "TASKS = {'default': {'BACKEND': 'django.tasks.backends.dummy.DummyBackend'}}\n"
        ),
        conftest="import django\ndjango.setup()\n",
    )
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "mysettings")
    monkeypatch.setenv("PYTHONPATH", python_path(user_project.path))
    result = user_project.runpytest_subprocess("-p", "no:django", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    assert "found no django_tasks_fs backend in TASKS (backends: ['default'])" in (
        result.stdout.str()
    )


def test_loading_the_plugin_imports_neither_django_nor_google_clients() -> None:
    # pytest loads it in every project that installs the package, used or not.
    check = (
        "import sys, django_tasks_fs.testing.plugin\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'"
        " or m.startswith('google.cloud')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
