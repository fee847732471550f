"""The drain, start-up and capacity benchmarks still run (short versions; the real
campaign is run on demand)."""

from __future__ import annotations

import json
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
            "20",
            "40",
            "--repeat",
            "1",
            "--skip-anchors",
            "--no-capacity",
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
    assert "### 20 tasks" in text
    assert "### 40 tasks" in text
    assert text.count("| **django-tasks-fs** | 1 |") == 2
    assert "drain tasks/s" in text
    assert "start-up is" in text
    assert "its floor" in text


def run_json(*args: str) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def test_startup_benchmark_smoke() -> None:
    figures = run_json("benchmarks/startup.py", "--repeat", "1")
    assert figures["runs"] == 2
    assert figures["floor_wall_s"] > 0
    assert figures["ours_wall_s"] > 0
    assert figures["ratio_cpu_s"] is not None


def test_emulator_capacity_smoke() -> None:
    args = ["--serial", "10", "--batched", "600", "--claim", "120", "--chunk", "50"]
    figures = run_json("benchmarks/emulator_capacity.py", *args)
    assert figures["claimed"] == 120
    for key in ("serial_creates_per_s", "batched_writes_per_s", "claims_per_s"):
        assert figures[key] > 0
