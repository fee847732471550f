"""The wheel and sdist: built by ``uv build``, valid for PyPI, installable and importable."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


def uv() -> list[str]:
    # ``uv run`` exports UV (its own path) to what it runs.
    found = os.environ.get("UV") or shutil.which("uv")
    return [found] if found else [sys.executable, "-m", "uv"]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [*uv(), "build", "--out-dir", str(out), str(REPO_ROOT)], check=True, capture_output=True
    )
    return out


def test_the_wheel_holds_only_the_library(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {"django_tasks_fs", next(n for n in top if n.endswith(".dist-info"))}
    assert "django_tasks_fs/py.typed" in names
    assert "django_tasks_fs/store/executions.py" in names
    assert not any(n.startswith(("tests/", "emulator/", "benchmarks/")) for n in names)


def test_twine_check(dist: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "twine",
            "check",
            "--strict",
            *map(str, [*dist.glob("*.whl"), *dist.glob("*.tar.gz")]),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_wheel_installs_into_a_clean_venv(dist: Path, tmp_path: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    venv = tmp_path / "venv"
    subprocess.run(
        [*uv(), "venv", "--python", sys.executable, str(venv)], check=True, capture_output=True
    )
    python = venv / "bin" / "python"
    env = {**os.environ, "VIRTUAL_ENV": str(venv)}
    subprocess.run(
        [*uv(), "pip", "install", "--python", str(python), str(wheel)],
        check=True,
        capture_output=True,
        env=env,
    )
    smoke = (
        "import django; from django.conf import settings;"
        "settings.configure(INSTALLED_APPS=['django_tasks_fs'], TASKS={'default': {"
        "'BACKEND': 'django_tasks_fs.backends.ProcessBackend', 'OPTIONS': {'project_id': 'p'}}});"
        "django.setup();"
        "from django.tasks import task_backends; from django.core import checks;"
        "import django_tasks_fs; assert callable(django_tasks_fs.cancel_task);"
        "print(type(task_backends['default']).__name__, len(checks.run_checks()))"
    )
    result = subprocess.run(
        [str(python), "-c", smoke], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ProcessBackend", "0"]
