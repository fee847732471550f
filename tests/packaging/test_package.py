"""The wheel and sdist: built by ``uv build``, valid for PyPI, installable and importable."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.packaging.conftest import uv


def test_the_wheel_holds_only_the_library(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {"django_tasks_fs", next(n for n in top if n.endswith(".dist-info"))}
    assert "django_tasks_fs/py.typed" in names
    assert "django_tasks_fs/store/executions/__init__.py" in names
    assert "django_tasks_fs/store/ops/memory.py" in names
    # The emulators reach users' projects from the wheel alone (docs/howto/local-development.md).
    assert "django_tasks_fs/emulators/firestore.py" in names
    assert "django_tasks_fs/emulators/gcloud/server.py" in names
    assert "django_tasks_fs/management/commands/tasks_emulators.py" in names
    assert "django_tasks_fs/emulators/iap/proxy.py" in names
    assert "django_tasks_fs/management/commands/tasks_iap_proxy.py" in names
    assert not any(n.startswith(("tests/", "emulator/", "benchmarks/")) for n in names)


def test_the_emulators_extra_brings_what_the_gcloud_emulator_imports(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        lines = archive.read(metadata).decode().splitlines()
    assert "Provides-Extra: emulators" in lines
    extra = [line for line in lines if line.endswith("extra == 'emulators'")]
    assert [line.split(">=")[0] for line in extra] == ["Requires-Dist: cryptography"]
    # Not for production installs:
    assert not [
        line for line in lines if line.startswith("Requires-Dist: cryptography") and ";" not in line
    ]


def test_the_pypi_page_has_no_link_that_only_works_in_the_repository(dist: Path) -> None:
    """The README is the PyPI page: a relative link there leads nowhere."""
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        description = archive.read(metadata).decode().split("\n\n", 1)[1]
    assert "pip install django-tasks-fs" in description
    targets = re.findall(r"\]\(([^)\s]+)\)", description)
    assert [t for t in targets if not t.startswith(("https://", "http://"))] == []


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
