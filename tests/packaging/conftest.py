"""The distributions under test, built once per session by ``uv build``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


def uv() -> list[str]:
    # ``uv run`` exports UV (its own path) to what it runs.
    found = os.environ.get("UV") or shutil.which("uv")
    return [found] if found else [sys.executable, "-m", "uv"]


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the wheel and the sdist of this checkout."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [*uv(), "build", "--python", sys.executable, "--out-dir", str(out), str(REPO_ROOT)],
        check=True,
        capture_output=True,
    )
    return out
