"""Infrastructure markers: a missing package skips with its install command, or fails on CI."""

from __future__ import annotations

import pytest

from tests.factories import python_path

NEEDS_PACKAGES = """
import pytest

pytest_plugins = ["tests.markers"]
"""

TESTS = """
import pytest


@pytest.mark.browser
def test_admin_in_chromium():
    pass


@pytest.mark.faketime
def test_skewed_clock():
    pass


def test_plain():
    pass
"""


@pytest.fixture
def bare_machine(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A project whose tests need chromium and faketime, on a PATH that has neither."""
    pytester.makeconftest(NEEDS_PACKAGES)
    pytester.makepyfile(test_needs=TESTS)
    empty = pytester.mkdir("empty-bin")
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("PYTHONPATH", python_path())
    monkeypatch.delenv("CI", raising=False)
    return pytester


def test_missing_packages_skip_naming_the_install_command(bare_machine: pytest.Pytester) -> None:
    result = bare_machine.runpytest_subprocess("-rs", "-p", "no:django_tasks_fs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "*browser: needs Debian's chromium chromium-driver (missing on PATH: chromium, "
            "chromedriver); install it with: sudo apt-get install -y chromium chromium-driver*",
            "*faketime: needs Debian's faketime (missing on PATH: faketime); "
            "install it with: sudo apt-get install -y faketime*",
        ]
    )


@pytest.mark.parametrize("value", ["true", "1", "TRUE"])
def test_on_ci_missing_packages_fail_instead(
    bare_machine: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CI", value)
    result = bare_machine.runpytest_subprocess("-p", "no:django_tasks_fs")
    result.assert_outcomes(passed=1, errors=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*CI=true and this test needs Debian's chromium*"])


def test_markers_select(bare_machine: pytest.Pytester) -> None:
    result = bare_machine.runpytest_subprocess(
        "-m", "not browser and not faketime", "-p", "no:django_tasks_fs"
    )
    result.assert_outcomes(passed=1, deselected=2)


def test_emulator_fixtures_mark_their_tests(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeconftest(
        NEEDS_PACKAGES
        + """
@pytest.fixture
def firestore_emulator():
    return "127.0.0.1:1"


@pytest.fixture
def gcloud():
    return object()
"""
    )
    pytester.makepyfile(
        test_fixtures="""
def test_store(firestore_emulator):
    pass


def test_cloud(gcloud):
    pass
"""
    )
    monkeypatch.setenv("PYTHONPATH", python_path())
    selected = pytester.runpytest_subprocess(
        "-p", "no:django_tasks_fs", "-m", "firestore", "--collect-only", "-q"
    )
    selected.stdout.fnmatch_lines(["test_fixtures.py::test_store"])
    assert "test_cloud" not in selected.stdout.str()
    selected = pytester.runpytest_subprocess(
        "-p", "no:django_tasks_fs", "-m", "gcloud", "--collect-only", "-q"
    )
    selected.stdout.fnmatch_lines(["test_fixtures.py::test_cloud"])
    assert "test_store" not in selected.stdout.str()
