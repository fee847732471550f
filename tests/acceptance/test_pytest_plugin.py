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


USER_SETTINGS = """
SECRET_KEY = "x"
USE_TZ = True
DATABASES = {}
INSTALLED_APPS = ["django_tasks_fs", "shop"]
TASKS = {
    "default": {
        "BACKEND": "django_tasks_fs.backends.ProcessBackend",
        "OPTIONS": {"project_id": "my-project", "max_attempts": 2},
    }
}
"""

SHOP_TASKS = """
from django.tasks import task


@task
def add(a, b):
    return a + b


@task
def broken():
    raise ValueError("no")
"""

MEMORY_TESTS = """
from shop.tasks import add, broken


def test_a_task_runs(task_runner):
    result = add.enqueue(2, 3)
    (done,) = task_runner.run_all()
    assert (done.id, done.status, done.return_value) == (result.id, "SUCCESSFUL", 5)


def test_a_failure_is_retried_then_recorded(task_runner):
    result = broken.enqueue()
    task_runner.run_all()
    result.refresh()
    assert (result.status, result.attempts) == ("FAILED", 2)


def test_each_test_starts_empty(tasks_memory):
    from django.tasks import task_backends

    assert task_backends["default"].executions.count() == 0
"""


def test_the_memory_store_runs_a_users_tasks_without_java(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user's project with ``tasks_fs_store = memory``: pytest-django, no emulator, and
    no Java reachable (PATH and JAVA_HOME lead nowhere), so nothing could start one."""
    pytester.makeini("[pytest]\nDJANGO_SETTINGS_MODULE = mysettings\ntasks_fs_store = memory\n")
    pytester.makepyfile(mysettings=USER_SETTINGS, test_shop=MEMORY_TESTS)
    pytester.mkpydir("shop")
    (pytester.path / "shop" / "tasks.py").write_text(SHOP_TASKS)
    for name in ("FIRESTORE_EMULATOR_HOST", "DJANGO_SETTINGS_MODULE", "TEST_FIRESTORE_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", str(pytester.path / "no-java-here"))
    monkeypatch.setenv("JAVA_HOME", str(pytester.path / "no-java-here"))
    monkeypatch.setenv("PYTHONPATH", python_path(pytester.path))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=3)


def test_an_unknown_store_is_named(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\nDJANGO_SETTINGS_MODULE = mysettings\ntasks_fs_store = redis\n")
    pytester.makepyfile(mysettings=USER_SETTINGS, test_shop=MEMORY_TESTS)
    pytester.mkpydir("shop")
    (pytester.path / "shop" / "tasks.py").write_text(SHOP_TASKS)
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    monkeypatch.setenv("PYTHONPATH", python_path(pytester.path))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=1, errors=2)
    assert "tasks_fs_store = 'redis' in the pytest configuration" in result.stdout.str()
