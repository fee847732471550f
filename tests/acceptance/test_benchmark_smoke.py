"""The drain benchmark still runs (a short version; the real campaign is run on demand)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

#: The benchmark starts the Firestore emulator itself (not through the fixture).
pytestmark = [pytest.mark.slow, pytest.mark.firestore]


def test_drain_benchmark_smoke(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    result = subprocess.run(
        [
            sys.executable,
            "benchmarks/drain.py",
            "--tasks",
            "40",
            "--repeat",
            "1",
            "--skip-anchors",
            "--markdown",
            str(page),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = page.read_text()
    assert "| **django-tasks-fs** | 1 |" in text
    assert "drain tasks/s" in text
